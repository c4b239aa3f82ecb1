package executor

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// maxEventSize bounds one RecordIO record of the event stream. It is the
// limit mesos-go's RecordIO reader already applies (its bufio.Scanner holds
// at most 4 MiB, "max protobuf size"); a longer record fails there anyway.
const maxEventSize = 4 << 20

// guardEvents makes the SUBSCRIBE response's RecordIO framing safe to hand
// to mesos-go. Its reader (recordio/reader.go, splitSize) converts the
// decimal length of a record to int without a bound, so a length of 2^63
// or more turns negative and it panics slicing the next record (a seed of
// FuzzEventStream). Mesos writes each record as "<decimal length>\n<bytes>"
// (3rdparty/stout/include/stout/recordio.hpp, encode); a length larger
// than maxEventSize ends the stream with an error here, so the executor
// resubscribes instead of crashing (a header that is no number at all
// mesos-go refuses itself).
func guardEvents(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusOK && resp.Body != nil {
			resp.Body = &recordGuard{r: resp.Body}
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// recordGuard passes a RecordIO stream through unchanged while checking
// the length in each record's header. Only an oversized length is its
// business: whatever else is wrong with a header (not a number, too long)
// mesos-go's reader refuses itself, so from then on the guard only passes
// bytes on. On an oversized length it returns the bytes before that header,
// then the error.
type recordGuard struct {
	r      io.ReadCloser
	remain uint64 // bytes of the current record still to pass
	header []byte // the length header read so far
	off    bool   // the framing is broken: mesos-go's reader ends here
	err    error  // returned once the good bytes are out
}

// maxHeaderLen is the longest length header mesos-go reads (the textual
// length of the largest uint64).
const maxHeaderLen = 20

func (g *recordGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	for i := 0; i < n && !g.off; {
		if g.remain > 0 {
			step := min(uint64(n-i), g.remain)
			g.remain -= step
			i += int(step)
			continue
		}
		if p[i] != '\n' {
			g.header = append(g.header, p[i])
			g.off = len(g.header) > maxHeaderLen
			i++
			continue
		}
		size, ok, perr := parseRecordSize(g.header)
		if perr != nil {
			g.err = perr
			return max(0, i-len(g.header)), nil
		}
		g.header, g.remain, g.off = g.header[:0], size, !ok
		i++
	}
	return n, err
}

// parseRecordSize reads a length header as mesos-go does (digits, spaces
// around them allowed). ok is false when it is no number: mesos-go stops
// there with its own error.
func parseRecordSize(h []byte) (size uint64, ok bool, err error) {
	h = bytes.TrimSpace(h)
	if len(h) == 0 {
		return 0, false, nil
	}
	for _, d := range h {
		if d < '0' || d > '9' {
			return 0, false, nil
		}
		size = size*10 + uint64(d-'0')
		if size > maxEventSize {
			return 0, false, fmt.Errorf("agent sent a RecordIO record of %s bytes, more than the %d an event may have: the stream is corrupt", h, maxEventSize)
		}
	}
	return size, true, nil
}

func (g *recordGuard) Close() error { return g.r.Close() }
