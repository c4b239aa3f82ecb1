// Command webserver is the service the web_service and cni_service fixtures
// run: it answers on its http port, and on its health port serves Aurora's
// /health (ok after -healthy-after), /quitquitquit and /abortabortabort.
// Build it with `go build -o dewar-test-webserver ./testdata/aurora/webserver`
// and point DEWAR_TEST_WEBSERVER at it (or put it on PATH).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	httpPort := flag.Int("http", 0, "port of the service")
	healthPort := flag.Int("health", 0, "port of /health and the lifecycle endpoints (0: the http port)")
	bind := flag.String("bind", "", "address to listen on (empty: all)")
	healthyAfter := flag.Duration("healthy-after", 0, "answer /health with ok only after this long")
	quitDelay := flag.Duration("quit-delay", 0, "after /quitquitquit, exit after this long")
	message := flag.String("message", "hello from dewar", "body served on /")
	flag.Parse()

	start := time.Now()
	quit := make(chan int, 1)
	health := http.NewServeMux()
	health.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if time.Since(start) < *healthyAfter {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	health.HandleFunc("/quitquitquit", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s /quitquitquit", r.Method)
		fmt.Fprintln(w, "quitting")
		go func() { time.Sleep(*quitDelay); quit <- 0 }()
	})
	health.HandleFunc("/abortabortabort", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s /abortabortabort", r.Method)
		fmt.Fprintln(w, "aborting")
		quit <- 1
	})
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
	code := <-quit
	os.Exit(code)
}

func serve(bind string, port int, h http.Handler) {
	addr := net.JoinHostPort(bind, strconv.Itoa(port))
	log.Printf("listening on %s", addr)
	if err := http.ListenAndServe(addr, h); err != nil {
		log.Fatalf("listen on %s: %v", addr, err)
	}
}
