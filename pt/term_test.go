package pt

import (
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// closedWithin reports whether ch is closed within d.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// isClosed reports whether ch is closed now, after giving a wrongly running goroutine a moment.
func isClosed(ch <-chan struct{}) bool { return closedWithin(ch, 20*time.Millisecond) }

const generous = 10 * time.Second

// fakeMonitor starts a monitor with injected sources: signals sent on the returned channel,
// a parent id read from ppid (nil: the parent is not watched), stdin as given. stopped is
// closed when the monitor stops its signal handling.
func fakeMonitor(stdin io.Reader, exitOnStdinClose bool, ppid *atomic.Int64) (*Termination, chan<- os.Signal, <-chan struct{}) {
	sigs := make(chan os.Signal, 2)
	stopped := make(chan struct{})
	var getppid func() int
	if ppid != nil {
		getppid = func() int { return int(ppid.Load()) }
	}
	t := monitor(sigs, func() { close(stopped) }, stdin, exitOnStdinClose, getppid, 5*time.Millisecond)
	return t, sigs, stopped
}

func TestTerminationSIGTERM(t *testing.T) {
	var ppid atomic.Int64
	term, sigs, stopped := fakeMonitor(nil, true, &ppid)
	if isClosed(term.stop) || isClosed(term.now) {
		t.Fatal("closed before any event")
	}
	sigs <- syscall.SIGTERM
	if !closedWithin(term.now, generous) || !isClosed(term.stop) || !closedWithin(stopped, generous) {
		t.Fatal("SIGTERM did not close Now and Stop, and stop the signals")
	}
}

func TestTerminationSIGINT(t *testing.T) {
	term, sigs, stopped := fakeMonitor(nil, false, nil) // standalone: the parent is not watched
	sigs <- syscall.SIGINT
	if !closedWithin(term.stop, generous) {
		t.Fatal("first SIGINT did not close Stop")
	}
	if isClosed(term.now) {
		t.Fatal("first SIGINT closed Now")
	}
	sigs <- syscall.SIGINT
	if !closedWithin(term.now, generous) || !closedWithin(stopped, generous) {
		t.Fatal("second SIGINT did not close Now")
	}
}

func TestTerminationStdinEOF(t *testing.T) {
	var ppid atomic.Int64
	r, w := io.Pipe()
	term, _, stopped := fakeMonitor(r, true, &ppid)
	if _, err := w.Write([]byte("tor never writes, but if it did")); err != nil {
		t.Fatal(err)
	}
	if isClosed(term.stop) {
		t.Fatal("data on stdin closed Stop")
	}
	w.Close()
	if !closedWithin(term.now, generous) || !isClosed(term.stop) || !closedWithin(stopped, generous) {
		t.Fatal("stdin EOF did not close Now and Stop")
	}
}

// countReader counts Read calls and returns EOF.
type countReader struct{ reads atomic.Int32 }

func (c *countReader) Read([]byte) (int, error) { c.reads.Add(1); return 0, io.EOF }

func TestTerminationStdinIgnored(t *testing.T) {
	var ppid atomic.Int64
	stdin := &countReader{}
	term, sigs, _ := fakeMonitor(stdin, false, &ppid)
	if isClosed(term.now) || isClosed(term.stop) {
		t.Fatal("stdin EOF ended the program without TOR_PT_EXIT_ON_STDIN_CLOSE=1")
	}
	if n := stdin.reads.Load(); n != 0 {
		t.Fatalf("stdin read %d times", n)
	}
	sigs <- syscall.SIGTERM // ends the monitor's goroutines
	if !closedWithin(term.now, generous) {
		t.Fatal("SIGTERM did not close Now")
	}
}

func TestTerminationParentDeath(t *testing.T) {
	var ppid atomic.Int64
	ppid.Store(4242)
	term, _, stopped := fakeMonitor(nil, false, &ppid)
	if isClosed(term.now) {
		t.Fatal("closed while the parent lives")
	}
	ppid.Store(1) // reparented to init: the parent died
	if !closedWithin(term.now, generous) || !isClosed(term.stop) || !closedWithin(stopped, generous) {
		t.Fatal("parent death did not close Now and Stop")
	}
}

func TestDrain(t *testing.T) {
	term, sigs, _ := fakeMonitor(nil, false, nil)
	var active atomic.Int64
	active.Store(2)
	drained := make(chan struct{})
	go func() { term.Drain(&active); close(drained) }()
	active.Add(-1)
	if isClosed(drained) {
		t.Fatal("Drain returned with a connection active")
	}
	active.Add(-1)
	if !closedWithin(drained, generous) {
		t.Fatal("Drain did not return once no connection was active")
	}

	active.Store(1) // never ends: only Now ends Drain
	drained = make(chan struct{})
	go func() { term.Drain(&active); close(drained) }()
	sigs <- syscall.SIGTERM
	if !closedWithin(drained, generous) {
		t.Fatal("Drain did not return at Now")
	}
}

type closeCounter struct{ n atomic.Int32 }

func (c *closeCounter) Close() error { c.n.Add(1); return nil }

// TestWait: nothing happens before Stop; then the listeners are closed, the open connections
// drained, and the final report made once, after the last connection ended.
func TestWait(t *testing.T) {
	term, sigs, _ := fakeMonitor(nil, false, nil)
	var active atomic.Int64
	active.Store(1)
	var ln closeCounter
	reports, done := make(chan struct{}, 4), make(chan struct{})
	go func() { term.Wait([]io.Closer{&ln}, &active, func() { reports <- struct{}{} }); close(done) }()
	if isClosed(done) || len(reports) != 0 || ln.n.Load() != 0 {
		t.Fatal("Wait acted before Stop")
	}
	sigs <- syscall.SIGINT // the first one closes Stop only
	for deadline := time.Now().Add(generous); ln.n.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the listener was not closed at Stop")
		}
	}
	if isClosed(done) || len(reports) != 0 {
		t.Fatal("Wait returned or reported with a connection still open")
	}
	active.Add(-1)
	if !closedWithin(done, generous) || len(reports) != 1 || ln.n.Load() != 1 {
		t.Fatalf("after the drain: returned %v, %d reports, listener closed %d times; want true, 1, 1",
			isClosed(done), len(reports), ln.n.Load())
	}
	sigs <- syscall.SIGINT // the second ends the monitor's goroutine
}
