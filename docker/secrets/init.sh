#!/usr/bin/env bash
# Creates each missing secret file under docker/secrets/ with a random password.
# Never overwrites an existing file. Usage: docker/secrets/init.sh
set -euo pipefail
cd "$(dirname "$0")"
chmod 0700 . 2>/dev/null || true
for example in *.example; do
    target="${example%.example}"
    if [ -e "$target" ]; then
        echo "secrets: $target exists, kept"
        continue
    fi
    # 24 random bytes as URL-safe base64: 32 characters, no quoting trouble anywhere.
    head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n=' > "$target"
    chmod 0644 "$target"
    echo "secrets: wrote $target"
done
