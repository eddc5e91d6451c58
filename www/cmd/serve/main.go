// Command serve runs the imgembed demo: www/, the JS package and the tfjs
// browser bundles, cross-origin isolated so tfjs-wasm can use threads.
//
//	go run ./www/cmd/serve --port 8080 --weights testdata/models
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/imgembed/imgembed/www/server"
)

func main() {
	addr := flag.String("addr", "localhost", "address to listen on (host or IP)")
	port := flag.Int("port", 8080, "TCP port (0 picks a free one)")
	weights := flag.String("weights", "", "directory of .safetensors checkpoints served under /models/")
	repo := flag.String("repo", "", "repository root (default: found from the working directory)")
	files := flag.String("files", "", "directory served as it is under /files/ (benchmarks)")
	flag.Parse()

	root := *repo
	if root == "" {
		var err error
		if root, err = findRepo(); err != nil {
			log.Fatal(err)
		}
	}
	h, err := server.New(server.Options{Repo: root, Weights: *weights, Files: *files})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	ln, err := net.Listen("tcp", net.JoinHostPort(*addr, strconv.Itoa(*port)))
	if err != nil {
		log.Fatalf("serve: listen: %v", err)
	}
	// Tests read this line to learn the port when --port 0 is used.
	fmt.Printf("imgembed demo: serving http://%s/\n", ln.Addr())
	if warn := server.ListenWarning(ln.Addr(), *weights); warn != "" {
		log.Print(warn)
	}
	if _, err := os.Stat(filepath.Join(root, "js", "dist", "imgembed.wasm")); err != nil {
		log.Printf("warning: js/dist/imgembed.wasm missing: run `make build`")
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "@tensorflow", "tfjs-core")); err != nil {
		log.Printf("warning: node_modules/@tensorflow/tfjs-core missing (the page cannot load TensorFlow.js): run `npm ci`")
	}

	srv := server.NewServer(logRequests(h), 0, 0, 0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("serve: %v", err)
	}
}

// findRepo walks up from the working directory to the directory holding
// go.mod and www/.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "www")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("serve: %w (searched upwards from the working directory; use --repo)", server.ErrNoRepo)
		}
		dir = parent
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func logRequests(next http.Handler) http.Handler {
	quiet := os.Getenv("IMGEMBED_SERVE_QUIET") != ""
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: 200}
		next.ServeHTTP(sw, r)
		if !quiet || sw.status >= 400 {
			log.Printf("%s %s %d", r.Method, r.URL.Path, sw.status)
		}
	})
}
