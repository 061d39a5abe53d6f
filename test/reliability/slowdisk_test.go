package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	slowRate    = 40              // reports a second
	slowLoad    = 5 * time.Second // of load before the kill
	slowTimeout = 10 * time.Second
)

// TestSlowDiskDurability puts the database on an ext4 file system on a
// loop device whose writes a blkio cgroup throttles to 4 IOPS, sends fresh
// reports at a moderate rate and kills CoreDNS with SIGKILL, once with the
// default answer_deadline and once with answer_deadline off. With the
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
		s.start()
		cg.add(t, s.proc.Cmd.Process.Pid)
		before := s.outcomes()
		load := startPacedLoad(s.dnsAddr(), 30000000, slowRate, slowLoad)
		// Stop sending, let every question under way get its answer (each
		// within the deadline), count the outcomes, then pull the plug: the
		// reports only queued in memory are still waiting for the disk.
		answered, lat, unanswered := load.wait()
		counted := delta(before, s.outcomes())
		s.kill()
		s.start() // unthrottled: a new process stores what the log holds
		s.stop()
		lost := missing(answered, storedNames(t, s.cfg.DB))
		total := 0.0
		for _, v := range counted {
			total += v
		}
		queued := int(counted["queued"])
		t.Logf("answer_deadline 300ms, disk at %d write IOPS: %d reports sent at %d/s for %v, %d answered (%d unanswered), outcomes %v; kill -9: %d answered reports lost (%.0f%% of those answered), bound: %d queued; answer latency p50 %v p99 %v max %v",
			slowIOPS, len(answered)+unanswered, slowRate, slowLoad, len(answered), unanswered, counted, len(lost),
			100*float64(len(lost))/float64(max(1, len(answered))), queued, pct(lat, 0.5), pct(lat, 0.99), pct(lat, 1))
		if int(total) != len(answered)+unanswered {
			t.Errorf("%d reports answered, %d unanswered, but %v counted: every report sent must be counted once (%v)", len(answered), unanswered, total, counted)
		}
		if queued == 0 {
			t.Errorf("no answer was queued on a disk at %d write IOPS: the throttle did not bite (outcomes %v)", slowIOPS, counted)
		}
		if len(lost) > queued {
			t.Errorf("kill -9 lost %d answered reports, more than the %d answered while queued: an answer sent from disk was lost, e.g. %v",
				len(lost), queued, lost[:min(3, len(lost))])
		}
	})

	t.Run("off", func(t *testing.T) {
		s := newServer(t, config{DB: filepath.Join(mnt, "off.db"), Options: limitOff(t) + "\nanswer_deadline off"})
		s.start()
		cg.add(t, s.proc.Cmd.Process.Pid)
		before := s.outcomes()
		load := startPacedLoad(s.dnsAddr(), 40000000, slowRate, slowLoad)
		// Pull the plug while questions wait for the disk: those get no
		// answer; every one answered must survive.
		time.Sleep(slowLoad)
		counted := delta(before, s.outcomes())
		s.kill()
		answered, lat, unanswered := load.wait()
		s.start()
		s.stop()
		lost := missing(answered, storedNames(t, s.cfg.DB))
		over2s := 0
		for _, d := range lat {
			if d > 2*time.Second {
				over2s++
			}
		}
		t.Logf("answer_deadline off, disk at %d write IOPS: %d reports sent at %d/s for %v, %d answered, %d unanswered at the kill; outcomes before it %v; kill -9: %d answered reports lost; answer latency p50 %v p99 %v max %v, %d answers over 2 s",
			slowIOPS, len(answered)+unanswered, slowRate, slowLoad, len(answered), unanswered, counted, len(lost),
			pct(lat, 0.5), pct(lat, 0.99), pct(lat, 1), over2s)
		if counted["queued"] != 0 {
			t.Errorf("answer_deadline off: %v answers counted queued", counted["queued"])
		}
		if len(answered) == 0 {
			t.Fatalf("answer_deadline off: no answer in %v", slowLoad)
		}
		if len(lost) > 0 {
			t.Errorf("answer_deadline off: kill -9 lost %d answered reports, e.g. %v", len(lost), lost[:min(3, len(lost))])
		}
	})
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
	unanswered int
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
		return
	}
	l.answered = append(l.answered, strings.ToLower(name))
	l.lat = append(l.lat, d)
}

// wait waits for every question to be answered or to time out.
func (l *pacedLoad) wait() (answered []string, lat []time.Duration, unanswered int) {
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answered, l.lat, l.unanswered
}

// pct is the q-quantile of lat (0 for none).
func pct(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))].Round(time.Millisecond)
}
