package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// Figures of the throttled disk: what the issue measured with (4 write
// IOPS), and the load, bounded in reports and time.
const (
	slowIOPS    = 4
	slowRate    = 150             // reports a second: more than the disk takes
	slowLoad    = 5 * time.Second // of load in each round
	slowTimeout = 5 * time.Second // a client's wait for its answer
)

// slowKills are the moments of the rounds' kills, into their load.
var slowKills = []time.Duration{2500 * time.Millisecond, 3500 * time.Millisecond, 4500 * time.Millisecond}

// TestSlowDiskDurability puts the database on an ext4 file system on a
// loop device whose writes a blkio cgroup throttles to 4 IOPS, sends fresh
// reports at 150 a second (more than the throttled disk takes) and kills
// CoreDNS with SIGKILL under the load, three times with the default
// answer_deadline and three times with answer_deadline off. With the
// deadline, every answer is counted by its outcome, and the answered
// reports missing after the restart are at most those counted queued
// (answered while only in memory): every answer sent from disk survives.
// With the deadline off, no answered report is lost; the answers wait for
// the disk, and their latency is logged.
func TestSlowDiskDurability(t *testing.T) {
	needRoot(t)
	mnt, cg := throttledDisk(t, slowIOPS)

	t.Run("deadline", func(t *testing.T) {
		s := newServer(t, config{DB: filepath.Join(mnt, "deadline.db"), Options: limitOff(t)})
		var answered, lost, queued int
		var lat []time.Duration
		for i, killAt := range slowKills {
			r := slowRound(t, s, cg, 30000000+i*100000, killAt)
			total := 0
			for _, v := range r.outcomes {
				total += int(v)
			}
			q := int(r.outcomes["queued"])
			t.Logf("round %d, kill -9 %v into the load: %d answered (%d unanswered), outcomes %v (%d answers came after the count); %d answered reports lost, bound: %d queued + %d late; answer latency p50 %v p99 %v max %v",
				i, killAt, len(r.answered), r.unanswered, r.outcomes, r.late, len(r.lost), q, r.late, pct(r.lat, 0.5), pct(r.lat, 0.99), pct(r.lat, 1))
			if total < len(r.answered)-r.late || total > len(r.answered)+r.unanswered {
				t.Errorf("round %d: %d reports counted (%v), but %d were answered before the count and %d sent: every answer must be counted once",
					i, total, r.outcomes, len(r.answered)-r.late, len(r.answered)+r.unanswered)
			}
			if len(r.lost) > q+r.late {
				t.Errorf("round %d: kill -9 lost %d answered reports, more than the %d answered while queued (and %d after the count): an answer sent from disk was lost, e.g. %v",
					i, len(r.lost), q, r.late, r.lost[:min(3, len(r.lost))])
			}
			answered, lost, queued = answered+len(r.answered), lost+len(r.lost), queued+q
			lat = append(lat, r.lat...)
		}
		t.Logf("answer_deadline 300ms, disk at %d write IOPS, %d/s, %d kills: %d answered, %d queued (%.0f%%), %d lost (%.0f%% of those answered); answer latency p50 %v p99 %v max %v",
			slowIOPS, slowRate, len(slowKills), answered, queued, 100*float64(queued)/float64(max(1, answered)),
			lost, 100*float64(lost)/float64(max(1, answered)), pct(lat, 0.5), pct(lat, 0.99), pct(lat, 1))
		if queued == 0 {
			t.Errorf("no answer was queued on a disk at %d write IOPS: the throttle did not bite", slowIOPS)
		}
	})

	t.Run("off", func(t *testing.T) {
		s := newServer(t, config{DB: filepath.Join(mnt, "off.db"), Options: limitOff(t) + "\nanswer_deadline off"})
		var answered, waiting, lost int
		var lat []time.Duration
		for i, killAt := range slowKills {
			r := slowRound(t, s, cg, 40000000+i*100000, killAt)
			t.Logf("round %d, kill -9 %v into the load: %d answered, %d waiting for the disk at the kill (%d more sent after it), outcomes %v; %d answered reports lost; answer latency p50 %v p99 %v max %v",
				i, killAt, len(r.answered), r.waiting, r.unanswered-r.waiting, r.outcomes, len(r.lost), pct(r.lat, 0.5), pct(r.lat, 0.99), pct(r.lat, 1))
			if r.outcomes["queued"] != 0 {
				t.Errorf("round %d: answer_deadline off, yet %v answers counted queued", i, r.outcomes["queued"])
			}
			if len(r.lost) > 0 {
				t.Errorf("round %d: answer_deadline off, yet kill -9 lost %d answered reports, e.g. %v", i, len(r.lost), r.lost[:min(3, len(r.lost))])
			}
			answered, waiting, lost = answered+len(r.answered), waiting+r.waiting, lost+len(r.lost)
			lat = append(lat, r.lat...)
		}
		over2s := 0
		for _, d := range lat {
			if d > 2*time.Second {
				over2s++
			}
		}
		t.Logf("answer_deadline off, disk at %d write IOPS, %d/s, %d kills: %d answered, %d waiting for the disk at the kills (unanswered), %d lost; answer latency p50 %v p99 %v max %v, %d answers over 2 s",
			slowIOPS, slowRate, len(slowKills), answered, waiting, lost, pct(lat, 0.5), pct(lat, 0.99), pct(lat, 1), over2s)
		if answered == 0 {
			t.Fatal("answer_deadline off: no answer at all")
		}
	})
}

// slowResult is one round of TestSlowDiskDurability.
type slowResult struct {
	answered   []string
	lat        []time.Duration
	unanswered int
	outcomes   map[string]float64 // counted just before the kill
	late       int                // answers that came after the count
	waiting    int                // unanswered questions sent before the kill
	lost       []string           // answered, not in the file after a restart
}

// slowRound starts s with its writes throttled by cg, sends slowRate fresh
// reports a second from installation base on, counts the outcomes and kills
// it killAt into the load, restarts it unthrottled (it stores what the log
// holds), stops it and reads the file.
func slowRound(t *testing.T, s *server, cg blkioGroup, base int, killAt time.Duration) slowResult {
	t.Helper()
	s.start()
	cg.add(t, s.proc.Cmd.Process.Pid)
	before := s.outcomes()
	load := startPacedLoad(s.dnsAddr(), base, slowRate, slowLoad)
	time.Sleep(killAt)
	counted := time.Now()
	outcomes := delta(before, s.outcomes())
	killed := time.Now()
	s.kill()
	var r slowResult
	r.answered, r.lat, r.unanswered = load.wait()
	r.outcomes, r.late, r.waiting = outcomes, load.answeredSince(counted), load.unansweredBefore(killed)
	s.start()
	s.stop()
	r.lost = missing(r.answered, storedNames(t, s.cfg.DB))
	return r
}

// blkioGroup is a blkio cgroup (v1) made for one test.
type blkioGroup string

func (g blkioGroup) add(t *testing.T, pid int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(string(g), "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatalf("moving pid %d into %s: %v", pid, g, err)
	}
}

// blkioRoot is where cgroup v1 mounts the blkio controller.
const blkioRoot = "/sys/fs/cgroup/blkio"

// throttledDisk makes a small ext4 file system on a loop device (direct
// I/O, so that the page cache of the backing file does not absorb the
// writes), mounts it, and makes a blkio cgroup that throttles its writes to
// iops; a quick measurement proves the throttle bites. All of it is undone
// when the test ends, failed or not.
func throttledDisk(t *testing.T, iops int) (string, blkioGroup) {
	t.Helper()
	for _, c := range []struct{ name, pkg string }{{"losetup", "mount"}, {"mkfs.ext4", "e2fsprogs"}, {"mount", "mount"}} {
		needCommand(t, c.name, c.pkg)
	}
	if _, err := os.Stat(filepath.Join(blkioRoot, "blkio.throttle.write_iops_device")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no cgroup v1 blkio throttle at %s: %v", blkioRoot, err)
		}
		t.Skipf("needs the cgroup v1 blkio throttle at %s: %v", blkioRoot, err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v %s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	dev := run("losetup", "--find", "--show", "--direct-io=on", img)
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	run("mkfs.ext4", "-q", dev)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	run("mount", dev, mnt)
	// Registered after the loop device's cleanup, so it runs before it;
	// the servers' own cleanups (newServer, later) kill them first.
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })

	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	cg := filepath.Join(blkioRoot, fmt.Sprintf("se-slowdisk-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeGroup(t, cg) })
	rule := fmt.Sprintf("%d:%d %d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)), iops)
	if err := os.WriteFile(filepath.Join(cg, "blkio.throttle.write_iops_device"), []byte(rule), 0o644); err != nil {
		t.Fatalf("throttling %s: %v", dev, err)
	}

	// The proof: 8 synchronous 4 KiB writes, each at least one write (and
	// the file system's journal), from inside the group and from outside.
	probe := func(inGroup bool) time.Duration {
		join := ""
		if inGroup {
			join = fmt.Sprintf("echo $$ > %s/cgroup.procs && ", cg)
		}
		script := join + fmt.Sprintf("for i in 1 2 3 4 5 6 7 8; do dd if=/dev/zero of=%s/probe bs=4k count=1 oflag=dsync conv=notrunc status=none || exit 1; done", mnt)
		start := time.Now()
		run("sh", "-c", script)
		return time.Since(start)
	}
	free, throttled := probe(false), probe(true)
	os.Remove(filepath.Join(mnt, "probe"))
	t.Logf("disk: ext4 on %s (direct I/O), writes throttled to %d IOPS by %s: 8 synchronous 4 KiB writes take %v (%v outside the group)",
		dev, iops, cg, throttled.Round(time.Millisecond), free.Round(time.Millisecond))
	if want := time.Duration(8/iops-1) * time.Second; throttled < want {
		t.Fatalf("the throttle does not bite: 8 synchronous writes took %v in the group (want at least %v at %d IOPS)", throttled, want, iops)
	}
	return mnt, blkioGroup(cg)
}

// removeGroup moves what is left in a cgroup back to the root group and
// removes it (a cgroup with processes cannot be removed).
func removeGroup(t *testing.T, cg string) {
	for range 50 {
		if b, err := os.ReadFile(filepath.Join(cg, "cgroup.procs")); err == nil {
			for _, pid := range strings.Fields(string(b)) {
				os.WriteFile(filepath.Join(blkioRoot, "cgroup.procs"), []byte(pid), 0o644)
			}
		}
		if err := os.Remove(cg); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("cgroup %s left behind", cg)
}

// pacedLoad sends a fresh report every 1/rate for a while, each question
// from its own goroutine, so a slow answer does not slow the rate; each
// waits up to slowTimeout for its answer.
type pacedLoad struct {
	wg sync.WaitGroup

	mu         sync.Mutex
	answered   []string
	lat        []time.Duration
	at         []time.Time // when each answer came
	unanswered int
	lateSent   []time.Time // when each unanswered question was sent
}

func startPacedLoad(addr string, base, rate int, d time.Duration) *pacedLoad {
	l := &pacedLoad{}
	n := int(d.Seconds() * float64(rate))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := range n {
			<-tick.C
			l.wg.Add(1)
			go l.ask(addr, reportName(base+i, 1795700000))
		}
	}()
	return l
}

func (l *pacedLoad) ask(addr, name string) {
	defer l.wg.Done()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	c := &dns.Client{Timeout: slowTimeout}
	start := time.Now()
	r, _, err := c.Exchange(m, addr)
	d := time.Since(start)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		l.unanswered++
		l.lateSent = append(l.lateSent, start)
		return
	}
	l.answered = append(l.answered, strings.ToLower(name))
	l.lat = append(l.lat, d)
	l.at = append(l.at, start.Add(d))
}

// unansweredBefore is the number of unanswered questions sent before t.
func (l *pacedLoad) unansweredBefore(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.lateSent {
		if at.Before(t) {
			n++
		}
	}
	return n
}

// answeredSince is the number of answers that came at t or later.
func (l *pacedLoad) answeredSince(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.at {
		if !at.Before(t) {
			n++
		}
	}
	return n
}

// wait waits for every question to be answered or to time out.
func (l *pacedLoad) wait() (answered []string, lat []time.Duration, unanswered int) {
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answered, l.lat, l.unanswered
}

// pct is the q-quantile of lat (percentile), to the millisecond.
func pct(lat []time.Duration, q float64) time.Duration {
	return percentile(lat, q).Round(time.Millisecond)
}
