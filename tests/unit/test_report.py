"""`cartable report`: golden figures on the demo and on a synthetic site, totals that add up,
shares that add up to the invoice to the cent, flagged unknown pupil counts, bad input."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from cartable.cli import main
from cartable.report.cli import default_as_of
from cartable.report.html import fr_date, fr_datetime, fr_money, fr_number
from cartable.report.inputs import fact_cache

from conftest import REPO, site_data

AS_OF = "2026-11-01"
# Chavagne (2 schools), Gévezé (2), Redon (3), Rennes: a maternelle and the primaire Simone
# Veil, which the directory gives no pupil count.
NO_COUNT = "0353062N"
SCHOOLS = ["0350192U", "0351817K", "0350266Z", "0352094L", "0350423V", "0351986U", "0350425X",
           "0350650S", NO_COUNT]
BILLING = {"title": "Quotes-parts test",
           "tariff": {"per_workstation": 41.37, "per_laptop": 12.5, "per_pupil": 1.333,
                      "per_school": 150, "fixed": 275.55},
           "communes": {"35236": {"fixed": 0}}}


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter=";"))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


@pytest.fixture
def synthetic(make_site):
    """A built site of 9 schools in 4 communes, laptops and class projectors, a tariff."""

    def make(**changes: object) -> Path:
        data = site_data(selection={"uai": SCHOOLS},
                         options={"class_equipment": True, "laptop_cart": 2},
                         renewal={"workstations": 6, "printers": 5},
                         billing=BILLING)
        data.update(changes)
        path = make_site(yaml.safe_dump(data, allow_unicode=True))
        assert main(["inventory", "build", str(path)]) == 0
        return path

    return make


def _report(site: Path, out: Path, *extra: str) -> int:
    return main(["report", str(site), "--as-of", AS_OF, "--out", str(out),
                 "--facts", str(site.parent / "no-facts"), *extra])


def test_synthetic_totals_are_the_sums_of_the_rows(synthetic, tmp_path, capsys) -> None:
    site = synthetic()
    out = tmp_path / "report"
    assert _report(site, out) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "communes.csv", "ecoles.csv", "facturation.csv", "materiel.csv", "rapport.html"]
    schools, communes, hosts = (_csv(out / n) for n in ("ecoles.csv", "communes.csv",
                                                        "materiel.csv"))
    assert sorted(s["uai"] for s in schools) == sorted(SCHOOLS)
    assert [c["code_commune"] for c in communes] == ["35076", "35120", "35236", "35238"]
    for column in ("postes", "portables", "serveurs", "imprimantes", "videoprojecteurs",
                   "postes_salle_info", "postes_classes", "eleves", "ecoles", "a_renouveler"):
        for commune in communes:
            mine = [s for s in schools if s["code_commune"] == commune["code_commune"]]
            assert int(commune[column]) == sum(int(s[column] or 0) for s in mine), column
    # every host of the inventory is one row of materiel.csv, counted once per school
    inventory = (site.parent / "hosts.yml").read_text()
    assert len(hosts) == inventory.count("ansible_host:")
    for school in schools:
        mine = [h for h in hosts if h["uai"] == school["uai"]]
        assert int(school["postes"]) == sum(1 for h in mine if h["famille"] == "postes")
        assert int(school["portables"]) == 2
    html = (out / "rapport.html").read_text()
    total_pupils = sum(int(s["eleves"]) for s in schools if s["eleves"])
    assert f"<b>{fr_number(total_pupils)}</b>élèves*" in html


def test_shares_add_up_to_the_invoice_to_the_cent(synthetic, tmp_path) -> None:
    site = synthetic()
    out = tmp_path / "report"
    assert _report(site, out) == 0
    rows = _csv(out / "facturation.csv")
    communes = {c["code_commune"]: c for c in _csv(out / "communes.csv")}
    exact = Decimal(0)
    for row in rows:
        commune = communes[row["code_commune"]]
        fixed = Decimal("0") if row["code_commune"] == "35236" else Decimal("275.55")
        amount = (Decimal("41.37") * int(commune["postes"]) + Decimal("12.5")
                  * int(commune["portables"]) + Decimal("1.333") * int(commune["eleves"])
                  + 150 * int(commune["ecoles"]) + fixed)
        assert Decimal(row["montant_tarif"]) == amount
        assert abs(Decimal(row["quote_part"]) - amount) < Decimal("0.01")
        exact += amount
    invoice = exact.quantize(Decimal("0.01"))
    assert sum(Decimal(r["quote_part"]) for r in rows) == invoice
    assert all(len(r["quote_part"].split(".")[1]) == 2 for r in rows)
    html = (out / "rapport.html").read_text()
    assert f"<td class=\"n\">{fr_money(invoice)}</td></tr>" in html  # the total row


def test_an_invoice_is_shared_exactly(synthetic, tmp_path) -> None:
    site = synthetic(billing={**BILLING, "invoice": "100000.01"})
    out = tmp_path / "report"
    assert _report(site, out) == 0
    rows = _csv(out / "facturation.csv")
    assert sum(Decimal(r["quote_part"]) for r in rows) == Decimal("100000.01")
    raw = [Decimal(r["montant_tarif"]) for r in rows]
    for row, amount in zip(rows, raw):  # proportional to the amounts at the tariff
        share = Decimal("100000.01") * amount / sum(raw)
        assert abs(Decimal(row["quote_part"]) - share) < Decimal("0.01")


def test_a_school_without_pupil_count_is_flagged_not_zero(synthetic, tmp_path, capsys) -> None:
    site = synthetic()
    out = tmp_path / "report"
    assert _report(site, out) == 0
    err = capsys.readouterr().err
    assert f"1 school(s) without a pupil count (not counted, flagged in the report): {NO_COUNT}" \
        in err
    school = next(s for s in _csv(out / "ecoles.csv") if s["uai"] == NO_COUNT)
    assert (school["eleves"], school["source_effectif"], school["eleves_par_poste"],
            school["ecoles_sans_effectif"]) == ("", "inconnu", "", "1")
    rennes = next(c for c in _csv(out / "communes.csv") if c["code_commune"] == "35238")
    assert rennes["ecoles_sans_effectif"] == "1"
    html = (out / "rapport.html").read_text()
    assert "1 école(s) sans effectif connu" in html and f"{NO_COUNT} Ecole primaire" in html
    assert '<span class="warn">inconnu</span>' in html
    # the pupils file fills it in
    (site.parent / "pupils.csv").write_text(f"uai;pupils\n{NO_COUNT};212\n")
    assert _report(site, out, "--pupils", str(site.parent / "pupils.csv")) == 0
    school = next(s for s in _csv(out / "ecoles.csv") if s["uai"] == NO_COUNT)
    assert (school["eleves"], school["source_effectif"]) == ("212", "fichier")


def test_demo_golden(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["report", str(REPO / "inventories/demo/site.yml"), "--as-of", AS_OF, "--out",
                 str(out), "--facts", str(tmp_path / "none")]) == 0
    (bill,) = _csv(out / "facturation.csv")
    # 29 workstations x 48.50 + 264 pupils (pupils.csv) x 1.80 + 3 schools x 250 + 400
    assert (bill["postes"], bill["eleves"], bill["ecoles"]) == ("29", "264", "3")
    assert bill["quote_part"] == "3031.70"
    hosts = {h["machine"]: h for h in _csv(out / "materiel.csv")}
    assert len(hosts) == 41
    sdi = hosts["0350626r-sdi01"]  # bought 2018-08-30, 6 years of service: due
    assert (sdi["age"], sdi["renouvellement"], sdi["etat_renouvellement"]) == \
        ("8", "2024-08-30", "a_renouveler")
    # bought 2021-03-15: due 2027-03-15, within the year
    assert hosts["0350626r-sdi07"]["etat_renouvellement"] == "dans_l_annee"
    assert hosts["0350607v-srv"]["etat_renouvellement"] == "ok"  # 2024 + 7 years
    assert hosts["0350607v-sdi03"]["etat_renouvellement"] == "inconnu"
    html = (out / "rapport.html").read_text()
    assert "Situation au 1er novembre 2026." in html and "3\u202f031,70\u00a0€" in html
    assert html.count('<svg class="plot"') == 3
    # models: 6 Lenovo M720q of 2018, all due; the oldest printer, bought 2016-06-20
    assert ("<td>postes</td><td>Lenovo ThinkCentre M720q</td><td class=\"n\">6</td>"
            "<td class=\"n\">30 août 2018</td><td class=\"n\">30 août 2018</td>"
            "<td class=\"n\">6</td>") in html
    assert hosts["0350626r-clr01"]["salle"] == "bcd" and hosts["0350626r-srv"]["salle"] == \
        "serveur"
    for fetch in ("<script", "<link", "<img", "src=", "url(http", 'href="http'):
        assert fetch not in html  # nothing to fetch: the page opens offline


def test_campaign_facts_and_differences(synthetic, tmp_path, capsys) -> None:
    site = synthetic()
    old = tmp_path / "reports" / "2025-11-01"
    assert main(["report", str(site), "--as-of", "2025-11-01", "--out", str(old),
                 "--facts", str(tmp_path / "none")]) == 0
    # a school leaves, facts arrive, a campaign runs
    data = yaml.safe_load(site.read_text())
    data["selection"]["uai"].remove("0350425X")
    site.write_text(yaml.safe_dump(data, allow_unicode=True))
    assert main(["inventory", "build", str(site)]) == 0
    facts = tmp_path / "facts"
    facts.mkdir()
    fact_cache(facts).set("0350192u-sdi01", {  # as Ansible writes them after a converge
        "ansible_distribution": "Debian", "ansible_distribution_version": "12.8",
        "ansible_mounts": [{"mount": "/", "size_total": 256e9, "size_available": 100e9}],
        "ansible_local": {"cartable_image": {"version": "salle-info-2026.2",
                                             "reimaged": "2026-10-20"}},
        "ansible_date_time": {"iso8601": "2026-10-30T08:00:00Z"}})
    (facts / "s1_0350192u-sdi02").write_text("{broken")
    fact_cache(facts).set("0350192u-sdi03", {})  # a play without gather_facts
    status = site.parent / "campaigns" / "toussaint" / "status.json"
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps({
        "campaign": "toussaint", "playbook": "playbooks/site.yml",
        "updated": "2026-10-31T18:00:00+00:00",
        "schools": {"0350192U": {"state": "ok", "wave": "w1", "started": None, "ended": None,
                                 "failed_hosts": [], "failed_tasks": [], "changed": 3},
                    "0351817K": {"state": "failed", "wave": "w1", "started": None,
                                 "ended": None, "failed_hosts": ["0351817k-dir01"],
                                 "failed_tasks": ["x"], "changed": 0}}}))
    # newer, cartable reimage's converges after restores: not a rollout, not the report's campaign
    reimage = site.parent / "campaigns" / "reimage" / "status.json"
    reimage.parent.mkdir(parents=True)
    reimage.write_text(json.dumps({
        "campaign": "reimage", "playbook": "playbooks/workstations.yml",
        "updated": "2026-10-31T21:00:00+00:00",
        "schools": {"0350192U": {"state": "ok", "wave": None, "started": None, "ended": None,
                                 "failed_hosts": [], "failed_tasks": [], "changed": 0}}}))
    rehearsal = site.parent / "campaigns" / "site-check" / "status.json"  # newer, --check
    rehearsal.parent.mkdir(parents=True)
    rehearsal.write_text(json.dumps({
        "campaign": "site-check", "playbook": "playbooks/site.yml", "check": True,
        "updated": "2026-10-31T20:00:00+00:00",
        "schools": {"0350192U": {"state": "failed", "wave": "w1", "started": None,
                                 "ended": None, "failed_hosts": [], "failed_tasks": [],
                                 "changed": 0}}}))
    new = tmp_path / "reports" / AS_OF
    assert main(["report", str(site), "--as-of", AS_OF, "--out", str(new),
                 "--facts", str(facts)]) == 0  # --previous found beside it
    assert "the cached facts of 0350192u-sdi02 are unreadable, ignored" in \
        capsys.readouterr().err
    changes = _csv(new / "evolution.csv")
    assert {"changement": "ecoles_parties", "identifiant": "0350425X",
            "detail": "Ecole primaire publique Jacques Prévert"} in changes or \
        any(c["changement"] == "ecoles_parties" and c["identifiant"] == "0350425X"
            for c in changes)
    removed = [c["identifiant"] for c in changes if c["changement"] == "machines_retirees"]
    assert removed and all(h.startswith("0350425x-") for h in removed)
    assert not [c for c in changes if c["changement"] in ("ecoles_ajoutees",
                                                          "machines_ajoutees")]
    host = next(h for h in _csv(new / "materiel.csv") if h["machine"] == "0350192u-sdi01")
    assert (host["systeme"], host["image_deployee"], host["derniere_reimage"],
            host["disque_go"]) == ("Debian 12.8", "salle-info-2026.2", "2026-10-20", "256.0")
    schools = {s["uai"]: s for s in _csv(new / "ecoles.csv")}
    assert schools["0350192U"]["machines_avec_faits"] == "1"
    assert schools["0350192U"]["images_deployees"] == "salle-info-2026.2:1"
    assert schools["0350192U"]["campagne_etat"] == "ok"
    assert schools["0351817K"]["campagne_etat"] == "failed"
    assert schools["0350266Z"]["campagne_etat"] == ""
    html = (new / "rapport.html").read_text()
    assert html.count('<svg class="plot"') == 3 and "campagne « toussaint »" in html
    assert 'data-plot="campagne"' in html
    assert "Aucune date d'achat connue" in html  # no hardware file: no age plot
    assert "Écoles parties : 1" in html


@pytest.mark.parametrize(("change", "files", "expected"), [
    ({"billing": None}, {}, "site.yml: [billing.tariff] no billing tariff in the site file"),
    ({"billing": {**BILLING, "communes": {"35999": {"fixed": 0}}}}, {},
     "[billing.communes.35999] billing.communes names '35999', which is no commune"),
    ({"billing": {**BILLING, "tariff": {"per_pupil": "1,2,3"}}}, {},
     "[billing.tariff.per_pupil] '1,2,3' is not an amount in euros"),
    ({"pupils": "pupils.csv"}, {"pupils.csv": "uai,pupils\n0350192U,12\n0359999Z,40\n"},
     "pupils.csv:3: [uai] UAI '0359999Z' is not a school of the inventory"),
    ({"pupils": "pupils.csv"}, {"pupils.csv": "uai,pupils\n0350192U,douze\n"},
     "pupils.csv:2: [pupils] 'douze' is not a number of pupils"),
    ({"hardware": "hw.csv"}, {"hw.csv": "uai,role,index,mac,purchase_date\n"
                                        "0350192U,sdi,1,,2019-13-01\n"},
     "hw.csv:2: [purchase_date] '2019-13-01' is not a date"),
    ({}, {"campaigns/rentree/status.json": '{"campaign": "rentree", "schools": {}}'},
     "campaigns/rentree/status.json: not a campaign status file (KeyError('updated'))"),
    ({}, {"campaigns/rentree/status.json": json.dumps({
        "campaign": "rentree", "updated": "2026-10-01T10:00:00", "schools": {
            "0350192U": {"state": "done"}}})},
     "campaigns/rentree/status.json: [state] unknown state(s) done"),
])
def test_bad_input_exits_2_and_writes_nothing(synthetic, tmp_path, capsys, change, files,
                                              expected) -> None:
    site = synthetic()
    for name, text in files.items():
        (site.parent / name).parent.mkdir(parents=True, exist_ok=True)
        (site.parent / name).write_text(text)
    data = yaml.safe_load(site.read_text())
    data.update({k: v for k, v in change.items() if v is not None})
    for key in [k for k, v in change.items() if v is None]:
        del data[key]
    site.write_text(yaml.safe_dump(data, allow_unicode=True))
    out = tmp_path / "report"
    assert _report(site, out) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()
    (out / "old.csv").write_text("kept")
    assert _report(site, out) == 2
    assert _snapshot(out) == {"old.csv": b"kept"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report")] == []


def test_as_of_in_the_future_or_not_a_date(synthetic, tmp_path, capsys) -> None:
    site = synthetic()
    out = tmp_path / "report"
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert main(["report", str(site), "--as-of", tomorrow, "--out", str(out)]) == 2
    assert f"--as-of: {tomorrow} is in the future" in capsys.readouterr().err
    assert main(["report", str(site), "--as-of", "01/11/2026", "--out", str(out)]) == 2
    assert "--as-of: '01/11/2026' is not a date" in capsys.readouterr().err
    assert not out.exists()


def test_a_report_replaces_the_previous_folder_whole(synthetic, tmp_path) -> None:
    site = synthetic()
    out = tmp_path / "report"
    out.mkdir()
    (out / "stale.csv").write_text("old")
    assert _report(site, out) == 0
    assert "stale.csv" not in _snapshot(out)
    first = _snapshot(out)
    assert _report(site, out) == 0
    assert _snapshot(out) == first  # same inputs, same bytes (plots included)


def test_default_as_of() -> None:
    assert default_as_of(dt.date(2026, 12, 2)) == dt.date(2026, 11, 1)
    assert default_as_of(dt.date(2027, 6, 30)) == dt.date(2026, 11, 1)
    assert default_as_of(dt.date(2026, 11, 1)) == dt.date(2026, 11, 1)
    assert default_as_of(dt.date(2026, 9, 15)) == dt.date(2026, 9, 15)  # not reached yet


def test_french_formatting() -> None:
    assert fr_number(1234567.891, 2) == "1\u202f234\u202f567,89"
    assert fr_number(999) == "999" and fr_number(None) == "—" and fr_number(0.5) == "1"
    assert fr_money(Decimal("3031.7")) == "3\u202f031,70\u00a0€"
    assert fr_date("2026-11-01") == "1er novembre 2026" and fr_date("2027-02-14") == \
        "14 février 2027"
    assert fr_datetime("2026-10-31T18:05:00+01:00") == "31 octobre 2026 à 18 h 05 (UTC+01:00)"


# --- the billing rule, as a property -------------------------------------------------------

from fractions import Fraction  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cartable.report.billing import distribute, statement  # noqa: E402
from cartable.site_report import Billing  # noqa: E402

_price = st.decimals(min_value=0, max_value=500, places=4)
_commune = st.fixed_dictionaries({"postes": st.integers(0, 400), "portables": st.integers(0, 60),
                                  "eleves": st.integers(0, 3000), "ecoles": st.integers(1, 40)})


@settings(max_examples=300, deadline=None)
@given(st.lists(_commune, min_size=1, max_size=30),
       st.fixed_dictionaries({k: _price for k in ("per_workstation", "per_laptop", "per_pupil",
                                                  "per_school", "fixed")}),
       st.one_of(st.none(), st.decimals(min_value=1, max_value=10_000_000, places=2)))
def test_shares_always_add_up_to_the_invoice(communes, tariff, invoice) -> None:
    rows = [{**c, "code_commune": f"35{i:03d}", "commune": f"C{i}", "ecoles_sans_effectif": 0}
            for i, c in enumerate(communes)]
    bill = Billing("t", tariff, invoice)
    if invoice is not None and all(v == 0 for v in tariff.values()):
        return  # nothing to share by: an error, tested above
    shares, total = statement(bill, rows, "site.yml")
    paid = sum(r["quote_part"] for r in shares)
    raw = sum(r["montant_tarif"] for r in shares)
    expected = invoice if invoice is not None else raw.quantize(Decimal("0.01"),
                                                                rounding="ROUND_HALF_UP")
    assert paid == expected == total["quote_part"] == total["facture"]
    for row in shares:  # each share within a cent of its exact value
        exact = Fraction(row["montant_tarif"]) * (Fraction(expected) / Fraction(raw)) \
            if raw else Fraction(0)
        assert abs(Fraction(row["quote_part"]) - exact) < Fraction(1, 100)
    # deterministic, whatever the order of the communes
    again, _ = statement(bill, list(reversed(rows)), "site.yml")
    assert {r["code_commune"]: r["quote_part"] for r in again} == \
        {r["code_commune"]: r["quote_part"] for r in shares}


def test_ties_go_to_the_smaller_insee_code() -> None:
    third = Fraction(100, 3)  # 33.333... each, 100.00 to share: one cent is left over
    assert distribute([third] * 3, ["35003", "35001", "35002"], 10000) == [3333, 3334, 3333]
