#!/usr/bin/env bash
# library/cups_printer.py against a real cupsd and a virtual IPP printer (private namespaces).
exec bash tests/integration/cups_printer/run.sh
