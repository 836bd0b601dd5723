# Playbook only: join the tcpdump ring files (oldest first) into one capture.pcap in the run dir, as the
# collector's capture.join_pcaps does on its side: the first file's header, then the records of every file.
# Each part is removed once appended, so the host never holds the capture twice. Prints the joined size.
dir=$1
shift
out="$dir/capture.pcap.joining"
: >"$out" || exit 73
for name; do
  part="$dir/$name"
  size=$(wc -c <"$part") || exit 74
  if [ "$size" -ge 24 ]; then  # shorter: tcpdump had not written this ring file yet
    if [ -s "$out" ]; then tail -c +25 -- "$part" >>"$out" || exit 74; else cat -- "$part" >>"$out" || exit 74; fi
  fi
  rm -f -- "$part"
done
mv -- "$out" "$dir/capture.pcap" || exit 73
echo "bytes=$(wc -c <"$dir/capture.pcap")"
