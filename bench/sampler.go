package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqbench/mqbench/broker/persist"
)

// fileID identifies one version of the persistence file. Mosquitto writes a new
// file and renames it over the old one, so a save shows as a new inode; mtime
// and size catch writers that rewrite in place.
type fileID struct {
	ino   uint64
	mtime int64
	size  int64
}

// sampler watches the persistence file: its size every interval, and each new
// version (a save) decoded into held/queued/inflight counts. It is what turns
// "the file grew by 27 KB" into "the broker held 120 messages".
type sampler struct {
	e        *engine
	b        *brokerRun // whose file it is: its name goes on every event
	path     string
	interval time.Duration
	decode   bool

	last    fileID
	started bool

	size      atomic.Int64 // last seen size, for progress
	saves     atomic.Int64 // saves detected
	decodeErr int          // decode errors noted (capped)
}

// statPath returns the identity of the file (or, for a directory, the sum of
// its files' sizes and the newest mtime).
func statPath(path string) (fileID, bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fileID{}, false, nil
		}
		return fileID{}, false, err
	}
	if !fi.IsDir() {
		id := fileID{mtime: fi.ModTime().UnixNano(), size: fi.Size()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			id.ino = st.Ino
		}
		return id, true, nil
	}
	var id fileID
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // files come and go while a broker writes; skip them
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				id.size += info.Size()
				if m := info.ModTime().UnixNano(); m > id.mtime {
					id.mtime = m
				}
			}
		}
		return nil
	})
	return id, true, err
}

// run samples until stop is closed, then takes a last sample.
func (s *sampler) run(stop <-chan struct{}) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	s.sample()
	for {
		select {
		case <-stop:
			s.sample()
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *sampler) sample() {
	id, ok, err := statPath(s.path)
	now := s.e.rec.Since()
	first := !s.started
	s.started = true
	if err != nil {
		if first {
			s.e.note(LevelInfo, fmt.Sprintf("cannot stat persistence path %s%s: %v", s.path, s.b.of(), err))
		}
		return
	}
	if !ok {
		return
	}
	s.size.Store(id.size)
	s.e.emit(s.b.tag(Event{T: now, Type: EvGauge, Name: GaugePersistBytes, Value: float64(id.size)}))
	if id == s.last {
		return
	}
	s.last = id
	if first {
		// A file present before the run started is not a save of this run.
		s.e.note(LevelInfo, fmt.Sprintf("persistence file %s%s exists at start (%d bytes)", s.path, s.b.of(), id.size))
		return
	}
	ev := Event{T: now, Type: EvSave, SizeBytes: id.size}
	if s.decode && id.ino != 0 {
		db, err := persist.ReadFile(s.path)
		if err != nil {
			if s.decodeErr < 5 {
				s.e.note(LevelInfo, fmt.Sprintf("decoding save%s at %s: %v", s.b.of(), time.Duration(now), err))
			}
			s.decodeErr++
		} else {
			st := db.Stats()
			ev.Held, ev.Queued, ev.Inflight = st.Held, st.Queued, st.Inflight
			ev.Stored = int64(st.Chunks.MsgStore)
			ev.DupStores = st.Duplicates
			ev.MsgBytes = persist.MessageBytes(db)
			ev.Decoded = true
		}
	}
	s.saves.Add(1)
	s.e.emit(s.b.tag(ev))
}

// procSampler records the broker's and mqbench's own memory and CPU every second.
func (e *engine) procSampler(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	self := os.Getpid()
	warned := make([]bool, len(e.brokers))
	for {
		now := e.rec.Since()
		if s, err := readProc(self); err == nil {
			e.emit(Event{T: now, Type: EvGauge, Name: GaugeBenchRSSBytes, Value: float64(s.RSSBytes)})
			e.emit(Event{T: now, Type: EvGauge, Name: GaugeBenchCPUSecs, Value: s.CPUSeconds})
		}
		for i, b := range e.brokers {
			pid := b.target.PID()
			if pid <= 0 || pid == self {
				continue
			}
			if s, err := readProc(pid); err == nil {
				e.emit(b.tag(Event{T: now, Type: EvGauge, Name: GaugeRSSBytes, Value: float64(s.RSSBytes)}))
				e.emit(b.tag(Event{T: now, Type: EvGauge, Name: GaugeCPUSeconds, Value: s.CPUSeconds}))
			} else if !warned[i] && !b.down.Load() {
				warned[i] = true
				e.note(LevelInfo, fmt.Sprintf("broker process %d%s: %v", pid, b.of(), err))
			}
		}
		e.emit(Event{T: now, Type: EvGauge, Name: GaugePublishedTotal, Value: float64(e.published.Load())})
		e.emit(Event{T: now, Type: EvGauge, Name: GaugeDeliveredTotal, Value: float64(e.delivered.Load())})
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
