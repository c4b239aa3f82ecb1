package observer

import (
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

type fileRow struct {
	Name, Link, Mod string
	Size            int64
	Dir             bool
}

// openRequested opens the request's {path} inside its task's run
// directory; on failure it has answered (404, 403) and f is nil.
func (s *Server) openRequested(w http.ResponseWriter, r *http.Request) (e *Entry, rel string, f *os.File, fi os.FileInfo) {
	if e = s.entry(w, r); e == nil {
		return nil, "", nil, nil
	}
	rel = r.PathValue("path")
	f, fi, err := openIn(e.RunDir, rel)
	if err != nil {
		fileError(w, "/"+rel, err)
		return nil, "", nil, nil
	}
	return e, rel, f, fi
}

// handleBrowse lists a directory of the task's run directory, or shows a
// file's tail (Thermos' /browse and /file).
func (s *Server) handleBrowse(w http.ResponseWriter, r *http.Request) {
	e, rel, f, fi := s.openRequested(w, r)
	if f == nil {
		return
	}
	defer f.Close()
	id := url.PathEscape(e.ID)
	clean := strings.Trim(path.Clean("/"+rel), "/")
	data := struct {
		page
		TaskID, Path, Parent, Raw, Data string
		Dir                             bool
		Size                            int64
		Files                           []fileRow
	}{page: page{Title: "/" + clean + " · " + e.ID, Hostname: s.opt.Hostname}, TaskID: e.ID, Path: clean, Dir: fi.IsDir()}
	if fi.IsDir() {
		if clean != "" {
			data.Parent = "/browse/" + id + "/" + path.Dir(clean)
		}
		ents, err := f.ReadDir(-1)
		if err != nil {
			fileError(w, "/"+rel, err)
			return
		}
		for _, de := range ents {
			row := fileRow{Name: de.Name(), Dir: de.IsDir(), Link: "/browse/" + id + "/" + path.Join(clean, url.PathEscape(de.Name()))}
			if info, err := de.Info(); err == nil {
				row.Size, row.Mod = info.Size(), info.ModTime().UTC().Format(time.DateTime)
			}
			data.Files = append(data.Files, row)
		}
		slices.SortFunc(data.Files, func(a, b fileRow) int { return strings.Compare(a.Name, b.Name) })
		s.render(w, "browse", data)
		return
	}
	data.Size, data.Raw = fi.Size(), "/download/"+id+"/"+clean
	b, _, err := tail(f, fi.Size(), s.opt.TailBytes)
	if err != nil {
		fileError(w, "/"+rel, err)
		return
	}
	if !utf8.Valid(b) {
		data.Data = "(binary file: use the raw link)"
	} else {
		data.Data = string(b)
	}
	s.render(w, "browse", data)
}

// handleDownload serves a file of the task's run directory as it is,
// always as text/plain: a page a task wrote must never run as the
// observer's own (it could call the observer's URLs with the viewer's
// browser).
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	e, rel, f, fi := s.openRequested(w, r)
	if f == nil {
		return
	}
	defer f.Close()
	if fi.IsDir() {
		http.Redirect(w, r, "/browse/"+url.PathEscape(e.ID)+"/"+rel, http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "sandbox")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(rel)}))
	http.ServeContent(w, r, "", fi.ModTime(), f)
}
