#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz with clang (ASan + UBSan) and
# runs each for SECONDS (default 60) from its seed corpus. Exits non-zero on
# the first crash, leak or sanitizer report; the input is left in
# build-fuzz/ for reproduction.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
out=build-fuzz
mkdir -p "$out"
flags="-g -O1 -std=c11 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined $(pkg-config --cflags jansson glib-2.0 openssl sqlite3 nice libsrtp2)"
libs="$(pkg-config --libs jansson glib-2.0 openssl sqlite3 nice libsrtp2)"
# The SFU, which the call state machine drives.
media="media/room.c media/room_fwd.c media/record.c media/transport.c media/ice_agent.c media/ctxmux.c media/dtls.c media/srtp.c media/srtp_ossl.c media/rtp.c media/rtcp_rr.c media/sdp.c"
# The SQLite store backend, every file of it.
store="records/store.c records/store_later.c records/store_replay.c records/store_sqlite.c records/store_sqlite_ts.c records/store_sqlite_ckpt.c records/store_sqlite_vfs.c records/store_sqlite_fanout.c records/store_sqlite_seq.c records/store_rate.c"
declare -A sources=(
  [envelope]="server/envelope.c common/errors.c common/jsonio.c"
  [json]="common/jsonio.c"
  [token]="server/token.c common/ids.c common/jsonx.c common/jsonio.c"
  [division]="records/jurisdiction.c"
  [call]="signaling/call.c signaling/call_invite.c signaling/call_media.c signaling/call_sfu.c
          signaling/call_join.c signaling/ice.c $media
          signaling/patrol.c push/presence.c $store records/account.c records/account_cache.c records/org.c
          records/jurisdiction.c records/calls.c records/audit.c records/password.c
          common/clock.c common/ids.c common/jsonx.c common/jsonio.c common/log.c common/errors.c common/hist.c
          common/bizdate.c"
  [rtp]="media/rtp.c media/rtcp_rr.c media/dtls.c media/srtp.c media/srtp_ossl.c"
  [srtp]="media/srtp.c media/srtp_ossl.c"
  [sdp]="media/sdp.c"
  [record]="media/record.c media/rtp.c"
  [readings]="records/reading.c records/reading_buffer.c records/sensor.c $store records/org.c records/jurisdiction.c records/audit.c
          common/clock.c common/ids.c common/jsonx.c common/jsonio.c common/log.c common/errors.c common/hist.c"
)
for t in "${!sources[@]}"; do
  # shellcheck disable=SC2086
  clang $flags -o "$out/fuzz_$t" "tests/fuzz/fuzz_$t.c" ${sources[$t]} $libs
done
for t in "${!sources[@]}"; do
  work="$out/corpus-$t"
  mkdir -p "$work"
  echo "fuzz_$t: ${secs}s"
  (cd "$out" && ./"fuzz_$t" -max_total_time="$secs" -max_len=4096 -print_final_stats=0 \
      "corpus-$t" "../tests/fuzz/corpus/$t" 2>"fuzz_$t.log") \
    || { tail -40 "$out/fuzz_$t.log"; echo "fuzz_$t FAILED"; exit 1; }
  grep -E "^#[0-9]+.*(DONE|pulse)" "$out/fuzz_$t.log" | tail -1 || true
done
rm -rf "${TMPDIR:-/tmp}"/yjt-fuzz-call-* /dev/shm/yjt-fuzz-call-* \
    "${TMPDIR:-/tmp}"/yjt-fuzz-readings-* /dev/shm/yjt-fuzz-readings-*
echo "fuzzing: ${#sources[@]} targets, no crash"
