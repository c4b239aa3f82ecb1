// Command webserver is the web service of the test jobs (testdata/aurora,
// testdata/jobs), built as dewar-test-webserver (`make build` puts it in
// bin/; tests get it from testenv.Program). The jobs run
// $DEWAR_TEST_WEBSERVER, a command line, or dewar-test-webserver from PATH.
//
// It answers on its http port and serves Aurora's /health (ok after
// -healthy-after), /quitquitquit and /abortabortabort on its health port
// (the http port when -health is 0). By default it honours the lifecycle
// as a real service does: /quitquitquit ends it (exit 0) after -quit-delay,
// /abortabortabort at once (exit 1).
//
// With -events FILE it is the witness of a kill instead: it appends one
// line "<event> <unix nanoseconds>" to FILE when it started, when it first
// answered /health with ok, on every /quitquitquit and /abortabortabort,
// and on SIGTERM, which is the only thing that ends it; a test proves the
// order of the kill from these times.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	httpPort := flag.Int("http", 0, "port of the service")
	healthPort := flag.Int("health", 0, "port of /health and the lifecycle endpoints (0: the http port)")
	bind := flag.String("bind", "", "address to listen on (empty: all)")
	healthyAfter := flag.Duration("healthy-after", 0, "answer /health with ok only after this long")
	message := flag.String("message", "hello from dewar", "body served on /")
	quitDelay := flag.Duration("quit-delay", 0, "after /quitquitquit, exit after this long (not with -events)")
	eventsPath := flag.String("events", "", "append the events to this file and run until SIGTERM, whatever the lifecycle endpoints ask")
	quitStopsHealth := flag.Bool("quit-stops-health", false, "after /quitquitquit, answer /health with 503, as a draining service does")
	lifecycleDelay := flag.Duration("lifecycle-delay", 0, "answer the lifecycle endpoints only after this long")
	flag.Parse()

	var rec recorder
	if *eventsPath != "" {
		f, err := os.OpenFile(*eventsPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		rec.f = f
	}
	// Take SIGTERM before serving, so that no signal can arrive unrecorded.
	term := make(chan os.Signal, 1)
	if rec.f != nil {
		signal.Notify(term, syscall.SIGTERM)
	}
	// Recorded first, so that "healthy" - "start" is never shorter than
	// -healthy-after.
	rec.record("start")
	start := time.Now()

	var (
		healthyOnce sync.Once
		quitting    atomic.Bool
	)
	exit := make(chan int, 1)
	health := http.NewServeMux()
	health.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if time.Since(start) < *healthyAfter || (*quitStopsHealth && quitting.Load()) {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		healthyOnce.Do(func() { rec.record("healthy") })
		fmt.Fprintln(w, "ok")
	})
	// lifecycle answers an endpoint of Aurora's HTTP lifecycle: noted
	// only with -events, else the service ends with code after delay.
	lifecycle := func(name, answer string, code int, delay time.Duration) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			log.Printf("%s /%s", r.Method, name)
			rec.record(name)
			quitting.Store(true)
			time.Sleep(*lifecycleDelay)
			if rec.f != nil {
				fmt.Fprintln(w, "noted; waiting for a signal")
				return
			}
			fmt.Fprintln(w, answer)
			go func() { time.Sleep(delay); exit <- code }()
		}
	}
	health.HandleFunc("/quitquitquit", lifecycle("quitquitquit", "quitting", 0, *quitDelay))
	health.HandleFunc("/abortabortabort", lifecycle("abortabortabort", "aborting", 1, 0))
	app := http.NewServeMux()
	app.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, *message) })
	if *healthPort == 0 || *healthPort == *httpPort {
		app.Handle("/health", health)
		app.Handle("/quitquitquit", health)
		app.Handle("/abortabortabort", health)
	} else {
		go serve(*bind, *healthPort, health)
	}
	go serve(*bind, *httpPort, app)
	select {
	case code := <-exit:
		os.Exit(code)
	case <-term:
		rec.record("SIGTERM")
		os.Exit(0)
	}
}

// recorder appends events to f (nil: records nothing). O_APPEND and one
// write per line keep lines whole although handlers run concurrently.
type recorder struct {
	mu sync.Mutex
	f  *os.File
}

func (r *recorder) record(name string) {
	if r.f == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := fmt.Fprintf(r.f, "%s %d\n", name, time.Now().UnixNano()); err != nil {
		log.Fatalf("recording %s: %v", name, err)
	}
}

func serve(bind string, port int, h http.Handler) {
	addr := net.JoinHostPort(bind, strconv.Itoa(port))
	log.Printf("listening on %s", addr)
	if err := http.ListenAndServe(addr, h); err != nil {
		log.Fatalf("listen on %s: %v", addr, err)
	}
}
