// Command gen writes dnsperf query files of status report names made with the
// codec's encoder: every name a distinct installation and start, or a mix with
// malformed and partial (QNAME-minimised) names.
//
//	go run ./bench/gen -n 1000000 -start 0 -mode new > new.txt
//	go run ./bench/gen -n 1000000 -start 5000000 -mode garbage > garbage.txt
//	go run ./bench/gen -n 1000000 -mode custom -zone status.example.org > custom.txt
package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

func main() {
	n := flag.Int("n", 100000, "names to write")
	start := flag.Uint64("start", 0, "index of the first installation; runs with disjoint ranges never share a report")
	mode := flag.String("mode", "new", "new: valid distinct reports; garbage: 50% valid, 25% malformed, 25% partial; custom: distinct reports of CustomFields")
	zone := flag.String("zone", "status.modsecurity.org", "status zone")
	flag.Parse()

	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	rng := rand.New(rand.NewPCG(*start, 42))
	for i := uint64(0); i < uint64(*n); i++ {
		idx := *start + i
		var name string
		switch {
		case *mode == "custom":
			name = codec.Encode(CustomBeacon(idx), int64(epochBase+idx), *zone)
		case *mode == "new" || i%2 == 0:
			name = ReportName(idx, *zone)
		case *mode == "garbage" && i%4 == 1:
			name = malformed(rng, idx, *zone)
		case *mode == "garbage":
			name = partial(rng, idx, *zone)
		default:
			fmt.Fprintf(os.Stderr, "gen: unknown mode %q\n", *mode)
			os.Exit(2)
		}
		w.WriteString(name)
		w.WriteString(" A\n")
	}
}

// Realistic field values, as Debian, Ubuntu, RHEL, Windows and nginx builds send them.
var (
	modsecs = []string{"2.9.7", "2.9.8", "2.9.6", "2.9.5", "2.9.3", "2.8.0"}
	servers = []string{"Apache/2.4.62 (Debian)", "Apache/2.4.58 (Ubuntu)", "Apache/2.4.37 (Red Hat Enterpr",
		"Apache/2.4.71 (Debian)", "Apache", "nginx", "IIS", "Apache/2.4.62 (Unix) OpenSSL/3.0.15"}
	aprs    = []string{"1.7.2/1.7.2", "1.7.0/1.7.0", "1.6.5/1.6.5", "1.7.4/1.7.4"}
	pcres   = []string{"10.42/", "8.45/8.45 2021-06-15", "10.40/", "8.39/8.39 2016-06-14"}
	luas    = []string{"Lua 5.1", "(null)", "Lua 5.3"}
	libxmls = []string{"2.9.14", "2.9.13", "2.9.10", "(null)"}
)

// epochBase is the client clock of the first start; start i happens i seconds
// later, so every (beacon, epoch) pair is new.
const epochBase = 1795549302

// Beacon is the beacon of installation idx: realistic versions, a full 40-hex id.
func Beacon(idx uint64) string {
	h := sha1.Sum([]byte(strconv.FormatUint(idx, 10)))
	pick := func(s []string, salt uint64) string { return s[(idx/7+salt*idx)%uint64(len(s))] }
	return strings.Join([]string{pick(modsecs, 1), pick(servers, 3), pick(aprs, 5), pick(pcres, 11),
		pick(luas, 13), pick(libxmls, 17), hex.EncodeToString(h[:])}, ",")
}

// CustomFields is the schema of -mode custom's beacons (a zone's schema
// block: fields, and version version, platform os, id id).
const CustomFields = "product version os arch id"

// CustomBeacon is the beacon of installation idx of a custom schema's zone.
func CustomBeacon(idx uint64) string {
	h := sha1.Sum([]byte(strconv.FormatUint(idx, 10)))
	return fmt.Sprintf("myapp,1.%d.%d,%s,%s,%s", idx%7, idx%13, []string{"linux", "freebsd", "windows"}[idx%3],
		[]string{"amd64", "arm64"}[idx%2], hex.EncodeToString(h[:]))
}

// ReportName is the name installation idx resolves at its start.
func ReportName(idx uint64, zone string) string {
	return codec.Encode(Beacon(idx), int64(epochBase+idx), zone)
}

// malformed names: bad base32, base32 of text that is no beacon, empty labels, junk.
func malformed(rng *rand.Rand, idx uint64, zone string) string {
	epoch := strconv.FormatUint(epochBase+idx, 10)
	switch rng.IntN(4) {
	case 0: // letters outside the alphabet (0, 1, 8, 9 and hyphens)
		return "GIXDSLRXFRAXAYLDNBSS6MROGQXD0M1A.FB-GKYTJ89XCSLBRFY3S4MRPGEXDOLRS." + epoch + "." + zone + "."
	case 1: // valid base32 of something that is not a beacon
		junk := make([]byte, 20+rng.IntN(60))
		for i := range junk {
			junk[i] = byte(0x20 + rng.IntN(0x5f))
		}
		return codec.Encode(string(junk), int64(epochBase+idx), zone)
	case 2: // a beacon with a broken field (id of 7 characters)
		b := Beacon(idx)
		return codec.Encode(b[:len(b)-33], int64(epochBase+idx), zone)
	default: // random label soup
		var b strings.Builder
		for range 1 + rng.IntN(5) {
			for range 1 + rng.IntN(40) {
				b.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789-_"[rng.IntN(38)])
			}
			b.WriteByte('.')
		}
		return b.String() + zone + "."
	}
}

// partial names are what a minimising resolver asks before the full name:
// "<epoch>.zone", then one more data label per query.
func partial(rng *rand.Rand, idx uint64, zone string) string {
	full := ReportName(idx, zone)
	labels := strings.Split(strings.TrimSuffix(full, "."), ".")
	zoneLabels := strings.Count(zone, ".") + 1
	data := len(labels) - zoneLabels - 1 // data labels before the epoch
	keep := rng.IntN(data)               // 0..data-1 data labels: never the whole name
	return strings.Join(labels[len(labels)-zoneLabels-1-keep:], ".") + "."
}
