"""`cartable report`: the fleet report (equipment, pupils, renewal, billing), HTML + CSV.

inputs (read and validate) -> compute (pure) -> billing (pure, exact cents) -> csvout / html
(+ plots) -> write (the output folder, atomically). docs/report.md.
"""
