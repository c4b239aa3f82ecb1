package observer

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
)

//go:embed templates/*.html
var templateFS embed.FS

// Options configure a Server.
type Options struct {
	// Root is the Mesos agent's work directory (--work_dir).
	Root string
	// TTL is how long a scan of Root is reused (default 2 s): new and
	// ended tasks show up within it.
	TTL time.Duration
	// Hostname is shown in every page's header.
	Hostname string
	// TailBytes is how much of a log the log page shows (default 64 KiB).
	TailBytes int64
	Logger    *zap.Logger
}

// Server serves the observer's pages, JSON and metrics.
type Server struct {
	opt   Options
	index *Index
	pages map[string]*template.Template
	log   *zap.Logger
	mux   *http.ServeMux
	disk  diskCache
	usage usageCache
	agent agentStreams
}

// NewServer returns the observer for opt.Root.
func NewServer(opt Options) (*Server, error) {
	if opt.TTL <= 0 {
		opt.TTL = 2 * time.Second
	}
	if opt.TailBytes <= 0 {
		opt.TailBytes = 64 << 10
	}
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	if opt.Hostname == "" {
		opt.Hostname, _ = os.Hostname()
	}
	if fi, err := os.Stat(opt.Root); err != nil || !fi.IsDir() {
		return nil, errors.New("--mesos-root " + opt.Root + " is not a directory: give the agent's --work_dir")
	}
	s := &Server{opt: opt, index: NewIndex(opt.Root, opt.TTL, opt.Logger), log: opt.Logger, pages: map[string]*template.Template{}}
	for _, p := range []string{"main", "task", "process", "logs", "browse"} {
		t, err := template.New(p).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, err
		}
		s.pages[p] = t.Lookup(p + ".html")
	}
	s.index.OnRescan(s.agent.forget)
	s.index.OnRescan(s.disk.forget)
	s.routes()
	return s, nil
}

// Index is the server's task index.
func (s *Server) Index() *Index { return s.index }

// ServeHTTP serves the observer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// ServeMux would answer a path with ".." with a redirect to its clean
	// form; a request for a file outside the sandbox is refused instead.
	if fileURL(r.URL.Path) && hasDotDot(r.URL.Path) {
		http.Error(w, r.URL.Path+": "+errForbidden.Error(), http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func fileURL(p string) bool {
	for _, prefix := range []string{"/browse/", "/file/", "/download/", "/filedata/", "/logs/", "/logdata/"} {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// hasDotDot reports a path with a ".." element, or an absolute path after
// the task id (an empty element: "/file/<id>//etc/passwd").
func hasDotDot(p string) bool {
	els := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, el := range els {
		if el == ".." || (el == "" && i > 0 && i < len(els)-1) {
			return true
		}
	}
	return false
}

// routes: Thermos' observer URLs (src/main/python/apache/thermos/observer/
// http/http_observer.py, json.py, file_browser.py) so that the Aurora UI's
// links (http://<agent>:1338/task/<task_id>) keep working.
func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", s.handleMain)
	m.HandleFunc("GET /main", s.handleMain)
	m.HandleFunc("GET /main/{which}", s.handleMain)
	m.HandleFunc("GET /main/{which}/{offset}", s.handleMain)
	m.HandleFunc("GET /main/{which}/{offset}/{num}", s.handleMain)
	m.HandleFunc("GET /task/{id}", s.handleTask)
	m.HandleFunc("GET /process/{id}/{process}", s.handleProcess)
	m.HandleFunc("GET /process/{id}/{process}/{run}", s.handleProcess)
	m.HandleFunc("GET /logs/{id}/{process}/{run}/{stream}", s.handleLogs)
	m.HandleFunc("GET /browse/{id}", s.handleBrowse)
	m.HandleFunc("GET /browse/{id}/{path...}", s.handleBrowse)
	m.HandleFunc("GET /file/{id}/{path...}", s.handleBrowse)
	m.HandleFunc("GET /download/{id}/{path...}", s.handleDownload)
	m.HandleFunc("GET /filedata/{id}/{path...}", s.handleFileData)
	m.HandleFunc("GET /logdata/{id}/{process}/{run}/{stream}", s.handleLogData)
	m.HandleFunc("GET /j/task_ids", s.handleJSONTaskIDs)
	m.HandleFunc("GET /j/task_ids/{which}", s.handleJSONTaskIDs)
	m.HandleFunc("GET /j/task_ids/{which}/{offset}", s.handleJSONTaskIDs)
	m.HandleFunc("GET /j/task_ids/{which}/{offset}/{num}", s.handleJSONTaskIDs)
	m.HandleFunc("GET /j/task_id_count", s.handleJSONTaskIDCount)
	m.HandleFunc("GET /j/task", s.handleJSONTasks)
	m.HandleFunc("GET /j/task/{id}", s.handleJSONTasks)
	m.HandleFunc("GET /j/process/{id}/{process}", s.handleJSONProcess)
	m.HandleFunc("GET /j/process/{id}/{process}/{run}", s.handleJSONProcess)
	m.Handle("GET /metrics", s.metricsHandler())
	s.mux = m
}

// page is what every template gets besides its own data.
type page struct {
	Title    string
	Hostname string
	Refresh  int // seconds; 0: the page does not reload itself
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.pages[name].Execute(w, data); err != nil {
		// Headers are gone; the page ends short. Log it.
		s.log.Warn("rendering a page", zap.String("page", name), zap.Error(err))
	}
}

// entry finds the task of the request, answering 404 when there is none.
func (s *Server) entry(w http.ResponseWriter, r *http.Request) *Entry {
	id := r.PathValue("id")
	e := s.index.Get(id)
	if e == nil {
		http.Error(w, "unknown task "+id+": no dewar task with this id under "+s.opt.Root, http.StatusNotFound)
	}
	return e
}

// fileError maps a file access error to its status.
func fileError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, errForbidden):
		http.Error(w, what+": "+errForbidden.Error(), http.StatusForbidden)
	case errors.Is(err, fs.ErrNotExist):
		http.Error(w, what+": not found", http.StatusNotFound)
	default:
		http.Error(w, what+": "+err.Error(), http.StatusInternalServerError)
	}
}
