// Command lifecycle is the web service of the e2e Aurora tests. It takes
// the flags of testdata/aurora/webserver (so the web fixtures run it
// unchanged through $DEWAR_TEST_WEBSERVER) but never exits on its own: it
// records, one line "<event> <unix nanoseconds>" each, when it started, when
// it first answered /health with ok, every /quitquitquit and
// /abortabortabort request, and SIGTERM, which ends it. The test then
// proves the order of the kill from these times. With -quit-stops-health it
// fails its health checks once asked to quit, as a draining service does.
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

var (
	mu     sync.Mutex
	events *os.File
)

// record appends an event; O_APPEND and one write per line keep lines
// whole even though handlers run concurrently.
func record(name string) {
	mu.Lock()
	defer mu.Unlock()
	if _, err := fmt.Fprintf(events, "%s %d\n", name, time.Now().UnixNano()); err != nil {
		log.Fatalf("recording %s: %v", name, err)
	}
}

func main() {
	httpPort := flag.Int("http", 0, "port of the service")
	healthPort := flag.Int("health", 0, "port of /health and the lifecycle endpoints (0: the http port)")
	bind := flag.String("bind", "", "address to listen on (empty: all)")
	healthyAfter := flag.Duration("healthy-after", 0, "answer /health with ok only after this long")
	message := flag.String("message", "hello from dewar", "body served on /")
	eventsPath := flag.String("events", "lifecycle.events", "file the events are appended to")
	quitStopsHealth := flag.Bool("quit-stops-health", false, "after /quitquitquit, answer /health with 503, as a draining service does")
	lifecycleDelay := flag.Duration("lifecycle-delay", 0, "answer the lifecycle endpoints only after this long")
	flag.Parse()

	f, err := os.OpenFile(*eventsPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	events = f
	// Take SIGTERM before serving, so that no signal can arrive unrecorded.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	// Recorded first, so that "healthy" - "start" is never shorter than
	// -healthy-after.
	record("start")
	start := time.Now()

	var (
		healthyOnce sync.Once
		quitting    atomic.Bool
	)
	health := http.NewServeMux()
	health.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if time.Since(start) < *healthyAfter || (*quitStopsHealth && quitting.Load()) {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		healthyOnce.Do(func() { record("healthy") })
		fmt.Fprintln(w, "ok")
	})
	for _, ep := range []string{"/quitquitquit", "/abortabortabort"} {
		health.HandleFunc(ep, func(w http.ResponseWriter, r *http.Request) {
			record(ep[1:])
			quitting.Store(true)
			time.Sleep(*lifecycleDelay)
			fmt.Fprintln(w, "noted; waiting for a signal")
		})
	}
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
	<-term
	record("SIGTERM")
	os.Exit(0)
}

func serve(bind string, port int, h http.Handler) {
	addr := net.JoinHostPort(bind, strconv.Itoa(port))
	log.Printf("listening on %s", addr)
	if err := http.ListenAndServe(addr, h); err != nil {
		log.Fatalf("listen on %s: %v", addr, err)
	}
}
