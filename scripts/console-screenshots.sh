#!/usr/bin/env bash
# Regenerates the screenshots of docs/console.md (docs/console/*.png): the console's browser
# test runs against a real `goosectl dev` in Debian's Chromium and saves each main page as it
# passes through it. Needs what `make test` needs (scripts/install-deps.sh), Node.js and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/console
GOOSE_CONSOLE_SCREENSHOTS="$PWD/docs/console" \
    cargo test -p goosectl --test it console::a_person_promotes_approves_watches_and_verifies_through_the_console_in_chromium -- --exact --nocapture 2>&1 | tail -30
ls -l docs/console
