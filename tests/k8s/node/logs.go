package node

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

// A container's log is a file of records in the CRI logging format:
// "<RFC3339Nano time> <stdout|stderr> <F|P> <content>\n", F ending a line
// and P a part of one (output that did not end with a newline). Reading it
// back gives the container's output byte for byte; each record keeps which
// stream it came from.
type containerLog struct {
	path string

	mu       sync.Mutex
	f        *os.File
	finished bool
	changed  chan struct{} // closed and replaced on every write and at finish
	subs     map[chan logRecord]struct{}
}

type logRecord struct {
	time   time.Time
	stream string // "stdout" or "stderr"
	data   []byte // with its newline when the record ends a line
}

func newContainerLog(path string) (*containerLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &containerLog{path: path, f: f, changed: make(chan struct{}), subs: map[chan logRecord]struct{}{}}, nil
}

// openFinishedLog is a log of an earlier run of a container, read only.
func openFinishedLog(path string) *containerLog {
	return &containerLog{path: path, finished: true, changed: make(chan struct{})}
}

// write records one chunk of a stream's output.
func (l *containerLog) write(stream string, p []byte) {
	now := time.Now().UTC()
	var buf bytes.Buffer
	var recs []logRecord
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		var line []byte
		tag := "F"
		if i < 0 {
			line, p, tag = p, nil, "P"
		} else {
			line, p = p[:i], p[i+1:]
		}
		buf.WriteString(now.Format(time.RFC3339Nano))
		buf.WriteString(" " + stream + " " + tag + " ")
		buf.Write(line)
		buf.WriteByte('\n')
		data := append([]byte(nil), line...)
		if tag == "F" {
			data = append(data, '\n')
		}
		recs = append(recs, logRecord{now, stream, data})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_, _ = l.f.Write(buf.Bytes())
	}
	for ch := range l.subs {
		for _, r := range recs {
			select {
			case ch <- r:
			default: // a subscriber that does not keep up loses output, as on a kubelet
			}
		}
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// finish marks the container as ended: followers stop at the end.
func (l *containerLog) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.finished {
		return
	}
	l.finished = true
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
	for ch := range l.subs {
		close(ch)
	}
	l.subs = nil
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *containerLog) state() (finished bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.finished, l.changed
}

// subscribe returns a channel of the records written from now on, closed
// when the container ends; cancel stops it early.
func (l *containerLog) subscribe() (ch chan logRecord, cancel func()) {
	ch = make(chan logRecord, 1024)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.finished {
		close(ch)
		return ch, func() {}
	}
	l.subs[ch] = struct{}{}
	return ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[ch]; ok {
			delete(l.subs, ch)
			close(ch)
		}
	}
}

func parseLogLine(line string) (logRecord, bool) {
	line = strings.TrimSuffix(line, "\n")
	parts := strings.SplitN(line, " ", 4)
	if len(parts) < 3 {
		return logRecord{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return logRecord{}, false
	}
	content := ""
	if len(parts) == 4 {
		content = parts[3]
	}
	data := []byte(content)
	if parts[2] == "F" {
		data = append(data, '\n')
	}
	return logRecord{t, parts[1], data}, true
}

// reader serves pods/log: the records' contents, with the options the
// kubelet API takes, following the file until the container ends if asked.
func (l *containerLog) reader(ctx context.Context, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		defer f.Close()
		pw.CloseWithError(l.serve(ctx, f, pw, opts))
	}()
	return &cancelReader{pr, cancel}, nil
}

type cancelReader struct {
	*io.PipeReader
	cancel func()
}

func (r *cancelReader) Close() error { r.cancel(); return r.PipeReader.Close() }

func (l *containerLog) serve(ctx context.Context, f *os.File, w io.Writer, opts api.ContainerLogOpts) error {
	since := opts.SinceTime
	if opts.SinceSeconds > 0 {
		since = time.Now().Add(-time.Duration(opts.SinceSeconds) * time.Second)
	}
	remaining := opts.LimitBytes
	atLineStart := true
	emit := func(r logRecord) error {
		if !since.IsZero() && r.time.Before(since) {
			return nil
		}
		out := r.data
		if opts.Timestamps && atLineStart {
			out = append([]byte(r.time.Format(time.RFC3339Nano)+" "), out...)
		}
		atLineStart = len(r.data) > 0 && r.data[len(r.data)-1] == '\n'
		if opts.LimitBytes > 0 {
			if remaining <= 0 {
				return io.EOF
			}
			if len(out) > remaining {
				out = out[:remaining]
			}
			remaining -= len(out)
		}
		_, err := w.Write(out)
		return err
	}
	br := bufio.NewReader(f)
	// What is in the file now, or its last lines.
	var existing []logRecord
	var partial string
	readAvailable := func() []logRecord {
		var recs []logRecord
		for {
			s, err := br.ReadString('\n')
			partial += s
			if err != nil {
				return recs
			}
			if r, ok := parseLogLine(partial); ok {
				recs = append(recs, r)
			}
			partial = ""
		}
	}
	finished, changed := l.state()
	existing = readAvailable()
	if opts.Tail > 0 {
		existing = tailLines(existing, opts.Tail)
	} else if opts.Tail == 0 && tailGiven(opts) {
		existing = nil
	}
	for _, r := range existing {
		if err := emit(r); err != nil {
			return nilIfEOF(err)
		}
	}
	if !opts.Follow {
		return nil
	}
	for {
		if finished {
			for _, r := range readAvailable() {
				if err := emit(r); err != nil {
					return nilIfEOF(err)
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-time.After(time.Second):
		}
		finished, changed = l.state()
		for _, r := range readAvailable() {
			if err := emit(r); err != nil {
				return nilIfEOF(err)
			}
		}
	}
}

// tailGiven: the kubelet API's tailLines=0 means no earlier lines, but the
// handler leaves Tail at 0 when it is absent too; virtual-kubelet gives no
// way to tell them apart, so 0 always means "everything".
func tailGiven(api.ContainerLogOpts) bool { return false }

func nilIfEOF(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

// tailLines keeps the records of the last n lines.
func tailLines(recs []logRecord, n int) []logRecord {
	lines := 0
	for i := len(recs) - 1; i >= 0; i-- {
		d := recs[i].data
		if len(d) > 0 && d[len(d)-1] == '\n' {
			lines++
			if lines > n {
				return recs[i+1:]
			}
		}
	}
	return recs
}
