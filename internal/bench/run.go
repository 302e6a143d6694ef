// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
)

// Mode is how the host is traced during a trial.
type Mode string

// The modes a run compares. ModeNone is the baseline every ratio is against.
const (
	ModeNone          Mode = "none"
	ModeAggregate     Mode = "aggregate"      // droptrace, counts only
	ModeEvents        Mode = "events"         // droptrace --events --max-event-rate 0: every drop streamed
	ModeEventsLimited Mode = "events-limited" // droptrace --events with its default per-CPU rate limit
	// ModeEventsFiltered streams events through a port filter the flood never matches
	// (--port 1, unlimited rate): what a filter costs a drop it keeps out of the ring.
	ModeEventsFiltered Mode = "events-filtered"
	// ModePcap streams every drop as ModeEvents does, each also written to a pcapng file with
	// its packet's first 128 bytes (--pcap).
	ModePcap     Mode = "pcap"
	ModeBpftrace Mode = "bpftrace" // the one-liner, the peer baseline
	// ModeFloor attaches empty programs where droptrace attaches its own (AttachFloor): the
	// cost no program at those tracepoints can go below.
	ModeFloor Mode = "floor"
)

// AllModes is the default order; each round rotates it.
var AllModes = []Mode{ModeNone, ModeAggregate, ModeEvents, ModeEventsLimited, ModePcap, ModeBpftrace, ModeFloor}

// streams says whether the mode streams drop events, whose account a trial checks.
func (m Mode) streams() bool { return m == ModeEvents || m == ModeEventsLimited || m == ModePcap }

// Workload is the traffic of a trial.
type Workload string

// Workloads.
const (
	// WorkloadDrop floods a closed port: every datagram is a NO_SOCKET drop (plus the ICMP port
	// unreachable the kernel answers with, which is consumed, not dropped).
	WorkloadDrop Workload = "drop"
	// WorkloadDeliver floods a socket read on the other CPU: datagrams are delivered, so what
	// a tracer costs here is its NET_RX accounting (and nothing for drops).
	WorkloadDeliver Workload = "deliver"
)

// Config of a benchmark run.
type Config struct {
	Droptrace string // path of the droptrace binary
	Bpftrace  string // path of bpftrace; "" leaves ModeBpftrace out
	Rounds    int
	Trial     time.Duration // flood length of one trial
	FloodCPU  int
	SinkCPU   int
	Size      int // UDP payload
	Batch     int // datagrams per sendmmsg
	Modes     []Mode
	Workloads []Workload
	// ProgStats adds one trial per tracer mode and workload with the kernel's BPF run time
	// accounting on (it perturbs timing, so those trials are not in the ratios).
	ProgStats bool
	Dir       string    // droptrace output goes here
	Progress  io.Writer // one line per trial; nil: none
}

// Trial is one measured flood.
type Trial struct {
	Workload Workload
	Mode     Mode
	Round    int
	Sent     uint64
	// Delivered is what the sink read (WorkloadDeliver) during the flood.
	Delivered uint64
	Elapsed   time.Duration
	FloodCPU  time.Duration // the sending thread's CPU time (FloodResult.CPU)
	UDP       UDPCounters   // host namespace UDP counters' advance over the flood
	// Tracer process (zero for ModeNone).
	TracerCPU time.Duration // user + system during the flood
	Ready     time.Duration
	PeakRSS   uint64
	// droptrace's own account, from its summary.
	Summary *SummaryCounts
	Progs   []ProgCost // with Config.ProgStats, the tracer's programs
}

// PPS is the trial's throughput: datagrams sent (drop) or delivered (deliver) per second.
func (t Trial) PPS() float64 {
	n := t.Sent
	if t.Workload == WorkloadDeliver {
		n = t.Delivered
	}
	if t.Elapsed <= 0 {
		return 0
	}
	return float64(n) / t.Elapsed.Seconds()
}

// CPUPPS is datagrams sent per CPU second of the sending thread: the trial's throughput had the
// CPU been the flood's alone (see FloodResult.CPU).
func (t Trial) CPUPPS() float64 {
	if t.FloodCPU <= 0 {
		return 0
	}
	return float64(t.Sent) / t.FloodCPU.Seconds()
}

// CPUShare is the tracer's CPU time over the flood as a fraction of one CPU.
func (t Trial) CPUShare() float64 {
	if t.Elapsed <= 0 {
		return 0
	}
	return t.TracerCPU.Seconds() / t.Elapsed.Seconds()
}

// SummaryCounts is what droptrace's summary says about the drops and events of a trial.
type SummaryCounts struct {
	Drops, DropRecords                                 uint64
	Sent, Written, Lost, RateLimited, RingFull, Unread uint64
	WriteFailed                                        uint64
}

// Accounted says whether every drop is written or counted lost, and the file agrees.
func (s *SummaryCounts) Accounted(events bool) error {
	if s.DropRecords != s.Written {
		return fmt.Errorf("%d drop records in the file, summary says %d written", s.DropRecords, s.Written)
	}
	if !events {
		return nil
	}
	if s.Written+s.Lost < s.Drops {
		return fmt.Errorf("%d drops, only %d written + %d lost", s.Drops, s.Written, s.Lost)
	}
	return nil
}

// Report is a whole run.
type Report struct {
	Config  Config
	Trials  []Trial
	Stats   []Trial // ProgStats trials
	Kernel  string
	CPUs    int
	Started time.Time
	Took    time.Duration
}

// Run measures every workload: rounds of one trial per mode, the mode order rotated each round
// so that no mode always runs first or after the same neighbour, and slow drifts of the host
// hit every mode alike.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the benchmark needs root (BPF, SO_RCVBUFFORCE, CPU pinning of the tracer's victims)")
	}
	if runtime.NumCPU() < 2 {
		return nil, errors.New("the benchmark needs two CPUs: the flood on one, the sink and the tracer's userspace on the other")
	}
	if cfg.Rounds < 1 {
		cfg.Rounds = 1
	}
	modes := cfg.Modes
	if cfg.Bpftrace == "" {
		modes = without(modes, ModeBpftrace)
	}
	rep := &Report{Config: cfg, Kernel: kernelRelease(), CPUs: runtime.NumCPU(), Started: time.Now()}
	for _, w := range cfg.Workloads {
		var sink *Sink
		port, err := 0, error(nil)
		switch w {
		case WorkloadDrop:
			port, err = ClosedPort()
		case WorkloadDeliver:
			// 256 MiB of buffer is far more than a trial can queue if the reader stalls: the
			// workload stays "delivered" even when the tracer's userspace shares its CPU.
			sink, err = NewSink(cfg.SinkCPU, 256<<20)
			if sink != nil {
				port = sink.Port
			}
		default:
			err = fmt.Errorf("unknown workload %q", w)
		}
		if err != nil {
			return rep, err
		}
		for r := 0; r < cfg.Rounds; r++ {
			order := rotate(modes, r)
			for _, m := range order {
				tr, err := trial(ctx, cfg, w, m, r, port, sink, false)
				if err != nil {
					if sink != nil {
						sink.Close()
					}
					return rep, fmt.Errorf("%s/%s round %d: %w", w, m, r+1, err)
				}
				rep.Trials = append(rep.Trials, tr)
				progress(cfg.Progress, tr)
			}
		}
		if cfg.ProgStats {
			closer, err := EnableProgStats()
			if err != nil {
				fmt.Fprintf(progressOr(cfg.Progress), "BPF run time accounting unavailable: %v\n", err)
			} else {
				for _, m := range modes {
					if m == ModeNone {
						continue
					}
					tr, err := trial(ctx, cfg, w, m, 0, port, sink, true)
					if err != nil {
						closer.Close()
						if sink != nil {
							sink.Close()
						}
						return rep, fmt.Errorf("%s/%s BPF stats: %w", w, m, err)
					}
					rep.Stats = append(rep.Stats, tr)
				}
				closer.Close()
			}
		}
		if sink != nil {
			sink.Close()
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	rep.Took = time.Since(rep.Started)
	return rep, nil
}

func progressOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func progress(w io.Writer, t Trial) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "  %-8s round %d  %-15s %8.0f pkt/s %8.0f per CPU s", t.Workload, t.Round+1, t.Mode, t.PPS(), t.CPUPPS())
	if t.Mode != ModeNone && t.Mode != ModeFloor {
		fmt.Fprintf(w, "  tracer CPU %5.1f%%  peak RSS %5.1f MiB  ready %4d ms", 100*t.CPUShare(),
			float64(t.PeakRSS)/(1<<20), t.Ready.Milliseconds())
	}
	if s := t.Summary; s != nil && s.Sent+s.Lost > 0 {
		fmt.Fprintf(w, "  events %d written, %d lost", s.Written, s.Lost)
	}
	fmt.Fprintln(w)
}

func without(ms []Mode, x Mode) []Mode {
	var out []Mode
	for _, m := range ms {
		if m != x {
			out = append(out, m)
		}
	}
	return out
}

func rotate(ms []Mode, r int) []Mode {
	out := make([]Mode, len(ms))
	for i := range ms {
		out[i] = ms[(i+r)%len(ms)]
	}
	return out
}

func trial(ctx context.Context, cfg Config, w Workload, m Mode, round, port int, sink *Sink, stats bool) (Trial, error) {
	t := Trial{Workload: w, Mode: m, Round: round}
	var before map[ebpf.ProgramID]bool
	if stats {
		var err error
		if before, err = ProgIDs(); err != nil {
			return t, err
		}
	}
	var p *Proc
	var err error
	var floor io.Closer
	switch m {
	case ModeNone:
	case ModeFloor:
		floor, err = AttachFloor()
	case ModeAggregate:
		p, err = StartDroptrace(ctx, cfg.Droptrace, cfg.Dir)
	case ModeEvents:
		p, err = StartDroptrace(ctx, cfg.Droptrace, cfg.Dir, "--events", "--max-event-rate", "0")
	case ModeEventsLimited:
		p, err = StartDroptrace(ctx, cfg.Droptrace, cfg.Dir, "--events")
	case ModeEventsFiltered:
		p, err = StartDroptrace(ctx, cfg.Droptrace, cfg.Dir, "--port", "1", "--max-event-rate", "0")
	case ModePcap:
		pcap := filepath.Join(cfg.Dir, "droptrace.pcapng")
		defer os.Remove(pcap) // as large as the events' recording
		p, err = StartDroptrace(ctx, cfg.Droptrace, cfg.Dir, "--events", "--max-event-rate", "0", "--pcap", pcap)
	case ModeBpftrace:
		p, err = StartBpftrace(ctx, cfg.Bpftrace)
	default:
		err = fmt.Errorf("unknown mode %q", m)
	}
	if err != nil {
		return t, err
	}
	stop := func() {
		if p != nil {
			p.Stop(30 * time.Second)
		}
		if floor != nil {
			floor.Close()
			floor = nil
		}
	}
	var progs map[ebpf.ProgramID]bool
	var snap map[ebpf.ProgramID]ProgCost
	if stats {
		now, err := ProgIDs()
		if err != nil {
			stop()
			return t, err
		}
		progs = map[ebpf.ProgramID]bool{}
		for id := range now {
			if !before[id] {
				progs[id] = true
			}
		}
		snap = ProgSnapshot(progs)
	}
	// Let the tracer finish what it does right after attaching (its start record, the first
	// namespace listing) so that the flood measures steady state.
	time.Sleep(300 * time.Millisecond)
	var cpu0 time.Duration
	if p != nil {
		t.Ready = p.Ready
		if cpu0, err = CPUTime(p.Pid()); err != nil {
			stop()
			return t, err
		}
	}
	udp0, err := ReadUDP()
	if err != nil {
		stop()
		return t, err
	}
	var rx0 uint64
	if sink != nil {
		rx0 = sink.Received()
	}
	res, err := Flood(ctx, FloodConfig{CPU: cfg.FloodCPU, Port: port, Size: cfg.Size, Batch: cfg.Batch, Duration: cfg.Trial})
	if err != nil {
		stop()
		return t, err
	}
	t.Sent, t.Elapsed, t.FloodCPU = res.Sent, res.Elapsed, res.CPU
	if sink != nil {
		t.Delivered = sink.Received() - rx0
	}
	if p != nil {
		cpu1, err := CPUTime(p.Pid())
		if err != nil {
			stop()
			return t, err
		}
		t.TracerCPU = cpu1 - cpu0
	}
	if stats {
		t.Progs = ProgDelta(snap, ProgSnapshot(progs))
	}
	// Datagrams still queued to the sink are not counted (they were sent within the flood but
	// not delivered within it); the counters settle before they are read.
	time.Sleep(50 * time.Millisecond)
	udp1, err := ReadUDP()
	if err != nil {
		stop()
		return t, err
	}
	t.UDP = udp1.Sub(udp0)
	if p == nil {
		stop()
		return t, nil
	}
	exit, err := p.Stop(30 * time.Second)
	if err != nil {
		return t, err
	}
	if t.PeakRSS = exit.PeakRSS; t.PeakRSS == 0 {
		return t, fmt.Errorf("%s: no VmHWM read", p.Name)
	}
	if p.Output != "" {
		rec, err := ReadRecording(p.Output)
		if err != nil {
			return t, err
		}
		s := rec.Summary
		t.Summary = &SummaryCounts{Drops: TotalDrops(s), DropRecords: rec.Drops,
			Sent: s.Tracer.EventsSent, Written: s.Tracer.EventsWritten, Lost: s.LostEvents,
			RateLimited: s.Tracer.EventsRateLimited, RingFull: s.Tracer.EventsRingbufFull,
			Unread: s.Tracer.EventsUnread, WriteFailed: s.Tracer.EventsWriteFailed}
		if err := t.Summary.Accounted(m.streams()); err != nil {
			return t, fmt.Errorf("droptrace's account does not add up: %w", err)
		}
		// The recording can be large (every drop of an events trial); keep the disk clean.
		os.Remove(p.Output)
	}
	return t, nil
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
