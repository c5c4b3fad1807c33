"""netboot/initramfs/cartable-restore: the UEFI boot order it sets (network first, then the disk).

The shell functions run in dash (the restore environment's /bin/sh) on `efibootmgr -v` output
captured from the proof's QEMU PC (OVMF, tests/netboot/qemu-proof --uefi)."""

from __future__ import annotations

import subprocess

import pytest

from conftest import RESTORE, restore_function

MAC = "52:54:00:33:00:81"
ESP_UUID = "557271e7-5490-334f-bda6-47ff5a1f2e5b"  # the ESP the proof's `new` made (blkid PARTUUID)
# The BootOrder and Boot#### lines of OVMF's fresh NVRAM, read by efibootmgr 17 in the restore
# environment at the first restore (logged on the PC's serial console). Boot0003 is iPXE's own
# entry (the NIC's option ROM), Boot0004 the firmware's PXE over IPv4.
OVMF_FIRST = """\
BootOrder: 0000,0001,0002,0003,0004,0005,0006,0007,0008
Boot0000* UiApp\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)
Boot0001* UEFI QEMU DVD-ROM QM00005 \tPciRoot(0x0)/Pci(0x1f,0x2)/Sata(2,65535,0)N.....YM....R,Y.
Boot0002* UEFI Misc Device\tPciRoot(0x0)/Pci(0x3,0x0)N.....YM....R,Y.
Boot0003* UEFI PXEv4 (MAC:525400330081)\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(525400330081,1)N.....YM....R,Y.
Boot0004* UEFI PXEv4 (MAC:525400330081) 2\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(525400330081,1)/IPv4(0.0.0.00.0.0.0,0,0)N.....YM....R,Y.
Boot0005* UEFI PXEv6 (MAC:525400330081)\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(525400330081,1)/IPv6([::]:<->[::]:,0,0)N.....YM....R,Y.
Boot0006* UEFI HTTPv4 (MAC:525400330081)\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(525400330081,1)/IPv4(0.0.0.00.0.0.0,0,0)/Uri()N.....YM....R,Y.
Boot0007* UEFI HTTPv6 (MAC:525400330081)\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(525400330081,1)/IPv6([::]:<->[::]:,0,0)/Uri()N.....YM....R,Y.
Boot0008* EFI Internal Shell\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(7c04a583-9e3e-4f1c-ad65-e05268d0b4d1)
"""
CARTABLE_ENTRY = f"Boot0009* Cartable\tHD(2,GPT,{ESP_UUID},0x1000,0x64000)/File(\\EFI\\BOOT\\BOOTX64.EFI)\n"
# after `efibootmgr --create` (the new entry first in BootOrder), as the restore then reads it
AFTER_CREATE = OVMF_FIRST.replace("BootOrder: ", "BootOrder: 0009,") + CARTABLE_ENTRY
# the NVRAM at the next restore (power-on 3 of the proof, a requested sync): exactly what the
# PC's console showed (the order the first restore set, Boot0009 its Cartable entry)
OVMF_WITH_ENTRY = OVMF_FIRST.replace("BootOrder: 0000,0001,0002,0003,0004,", "BootOrder: 0004,0009,0000,0001,0002,0003,") + CARTABLE_ENTRY


def call(function: str, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return restore_function(function, *args, stdin=stdin)


def order(text: str, mac: str = MAC) -> str | None:
    result = call("efi_boot_order", text, mac, "Cartable")
    assert result.stderr == ""
    return result.stdout.strip() if result.returncode == 0 else None


def stale(text: str, uuid: str = ESP_UUID) -> tuple[list[str], bool]:
    """The entries to delete, and whether this ESP's entry is there."""
    result = call("efi_stale_entries", text, "Cartable", uuid)
    assert result.stderr == "" and result.returncode in (0, 1)
    return result.stdout.split(), result.returncode == 0


def test_sourcing_the_script_runs_no_restore() -> None:
    result = call("true", "")
    assert result.returncode == 0 and result.stdout == ""


def test_first_restore_network_first_then_the_disk_then_the_rest() -> None:
    assert stale(OVMF_FIRST) == ([], False)  # nothing to delete: the entry is to create
    # as the PC computed it (serial console of the proof, power-on 1)
    assert order(AFTER_CREATE) == "0004,0009,0000,0001,0002,0003,0005,0006,0007,0008"


def test_second_restore_changes_nothing() -> None:
    assert stale(OVMF_WITH_ENTRY) == ([], True)
    assert order(OVMF_WITH_ENTRY) == OVMF_WITH_ENTRY.split("BootOrder: ")[1].split("\n")[0]


def test_a_new_partition_table_replaces_the_entry() -> None:
    # `new` repartitions: the ESP's PARTUUID changes, the old entry points nowhere
    assert stale(OVMF_WITH_ENTRY, "0e6c4b1a-0000-4000-8000-000000000001") == (["0009"], False)


def test_duplicates_are_deleted_and_the_first_kept() -> None:
    line = next(x for x in OVMF_WITH_ENTRY.splitlines() if x.startswith("Boot0009"))
    text = OVMF_WITH_ENTRY + line.replace("Boot0009", "Boot000A") + "\n"
    assert stale(text) == (["000A"], True)
    assert stale(text, ESP_UUID.upper()) == (["000A"], True)  # the PARTUUID's case does not matter


def test_without_the_cards_pxe_ipv4_entry_nothing_is_set() -> None:
    assert order(AFTER_CREATE, "52:54:00:99:99:99") is None
    http_only = "\n".join(x for x in AFTER_CREATE.splitlines() if not x.startswith(("Boot0003", "Boot0004")))
    assert order(http_only + "\n") is None  # neither HTTP boot, nor IPv6, nor a MAC-only entry
    assert order(OVMF_FIRST) is None  # no Cartable entry: BootOrder left as it is


def test_a_real_pc_entry_and_entries_missing_from_boot_order() -> None:
    text = ("BootOrder: 0001,0000\n"
            "Boot0000* Windows Boot Manager\tHD(1,GPT,aa,0x800,0x32000)/File(\\EFI\\Microsoft\\Boot\\bootmgfw.efi)\n"
            "Boot0001* Cartable\tHD(2,GPT,bb,0x1000,0x64000)/File(\\EFI\\BOOT\\BOOTX64.EFI)\n"
            "Boot0002* Onboard NIC(IPV4)\tPciRoot(0x0)/Pci(0x1f,0x6)/MAC(6C4B90AABBCC,0)/IPv4(0.0.0.00.0.0.0,0,0)\n")
    assert order(text, "6c:4b:90:aa:bb:cc") == "0002,0001,0000"


# what `efibootmgr --create-only` leaves: the new entry, not in BootOrder (the firmware's order
# stays as it was until efi_boot_order's order is set: a PC whose network entry is not found
# keeps booting through the network first, as before)
AFTER_CREATE_ONLY = OVMF_FIRST + CARTABLE_ENTRY


def test_the_entry_created_outside_boot_order_goes_second() -> None:
    assert order(AFTER_CREATE_ONLY) == "0004,0009,0000,0001,0002,0003,0005,0006,0007,0008"
    assert order(AFTER_CREATE_ONLY, "52:54:00:99:99:99") is None


def test_the_script_creates_the_entry_without_putting_it_first() -> None:
    text = RESTORE.read_text(encoding="utf-8")
    creates = [line for line in text.splitlines() if line.strip().startswith("efibootmgr") and "--loader" in line]
    assert creates and all("--create-only" in line for line in creates), creates


def test_efibootmgr_18_prints_the_loader_without_file() -> None:
    # efibootmgr 18 (Debian trixie): "HD(...)/\EFI\BOOT\BOOTX64.EFI", no File(...)
    v18 = OVMF_WITH_ENTRY.replace("/File(\\EFI\\BOOT\\BOOTX64.EFI)", "/\\EFI\\BOOT\\BOOTX64.EFI")
    assert "File(" not in v18.split("Boot0009")[1]
    assert stale(v18) == ([], True)
    assert stale(v18, "0e6c4b1a-0000-4000-8000-000000000001") == (["0009"], False)
    assert order(v18) == OVMF_WITH_ENTRY.split("BootOrder: ")[1].split("\n")[0]
