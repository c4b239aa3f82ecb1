package observer

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxChunk bounds one /logdata or /filedata answer.
const maxChunk = 1 << 20

// chunk is Thermos' pailer protocol (file_browser.py, _read_chunk): the
// bytes of a file from offset (-1: the end, so a follower starts there),
// at most length (-1: to the end). A follower asks again from
// offset+length. Unlike Thermos, data is not HTML-escaped: JSON is not
// HTML, and the caller decides how to show it.
type chunk struct {
	Offset int64  `json:"offset"`
	Length int    `json:"length"`
	Data   string `json:"data"`
	Size   int64  `json:"size"`
}

func readChunk(f *os.File, size int64, r *http.Request) (chunk, error) {
	offset, length := int64(-1), int64(-1)
	if v := r.URL.Query().Get("offset"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			offset = n
		}
	}
	if v := r.URL.Query().Get("length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			length = n
		}
	}
	if offset < 0 || offset > size {
		offset = size
	}
	if length < 0 || length > size-offset {
		length = size - offset
	}
	length = min(length, maxChunk)
	b := make([]byte, length)
	n, err := f.ReadAt(b, offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return chunk{}, err
	}
	b = b[:n]
	// Never cut a UTF-8 sequence: the follower gets its end next time.
	for i := 0; i < 3 && len(b) > 0 && !utf8.Valid(b); i++ {
		b = b[:len(b)-1]
	}
	return chunk{Offset: offset, Length: len(b), Data: strings.ToValidUTF8(string(b), "\uFFFD"), Size: size}, nil
}

func (s *Server) serveChunk(w http.ResponseWriter, r *http.Request, runDir, rel string) {
	f, fi, err := openIn(runDir, rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Thermos answers a missing log with an empty chunk: the process
		// may not have written yet.
		writeJSON(w, http.StatusOK, chunk{})
		return
	case err != nil:
		fileError(w, rel, err)
		return
	}
	defer f.Close()
	if fi.IsDir() {
		http.Error(w, rel+" is a directory", http.StatusBadRequest)
		return
	}
	c, err := readChunk(f, fi.Size(), r)
	if err != nil {
		fileError(w, rel, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// handleLogData is /logdata/<task>/<process>/<run>/<stdout|stderr>.
func (s *Server) handleLogData(w http.ResponseWriter, r *http.Request) {
	e, p := s.process(w, r)
	if p == nil {
		return
	}
	stream := r.PathValue("stream")
	run, ok := runOf(r, p)
	if (stream != "stdout" && stream != "stderr") || !ok {
		http.Error(w, "no such log", http.StatusNotFound)
		return
	}
	rel, err := logRel(e.Task, p.Name, run, stream)
	if err != nil {
		fileError(w, "log", err)
		return
	}
	s.serveChunk(w, r, e.RunDir, rel)
}

// handleFileData is /filedata/<task>/<path>.
func (s *Server) handleFileData(w http.ResponseWriter, r *http.Request) {
	e := s.entry(w, r)
	if e == nil {
		return
	}
	s.serveChunk(w, r, e.RunDir, r.PathValue("path"))
}
