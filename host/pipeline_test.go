package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestPipelineConcurrent: 16 callers share one native Embedder, each with
// a mix of good images, bad inputs and (every third caller) a context
// cancelled mid-call. Every good result equals the sequential one, bad
// inputs get their codes, cancelled calls end with Aborted, the model stays
// usable and no goroutine is left behind.
func TestPipelineConcurrent(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, Options{Model: modelPath("tiny-f32"), CacheDir: testCache(t), Threads: 2, MaxBatch: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	dir := t.TempDir()
	notImage := filepath.Join(dir, "notes.png")
	os.WriteFile(notImage, []byte("this is not an image at all"), 0o644)
	good := []string{}
	for _, img := range fixtureImages {
		good = append(good, filepath.Join(testdataDir, "images", img))
	}
	good = append(good, filepath.Join("..", "wasm", "imagefile", "testdata", "chelsea-q95-420.jpg"))
	want := map[string][]float32{}
	for _, p := range good {
		v, err := e.Embed(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		want[p] = v
	}
	type bad struct {
		src  any
		code Code
	}
	bads := []bad{
		{notImage, UnsupportedImageFormat},
		{filepath.Join(dir, "missing.png"), InvalidInput},
		{[]byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0}, CorruptImage},
		{42, InvalidInput},
	}
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()

	var wg sync.WaitGroup
	errc := make(chan error, 1000)
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var srcs []any
			var kinds []any // string path of a good image, or bad
			for k := 0; k < 10; k++ {
				if (c+k)%4 == 3 {
					b := bads[(c+k)%len(bads)]
					srcs, kinds = append(srcs, b.src), append(kinds, b)
					continue
				}
				p := good[(c*7+k)%len(good)]
				srcs, kinds = append(srcs, p), append(kinds, p)
			}
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if c%3 == 2 {
				cancelled := 0
				err := e.EmbedEach(cctx, srcs, func(i int, emb []float32, err error) {
					if i == 2 {
						cancel()
					}
					if errors.Is(err, ErrAborted) {
						cancelled++
						return
					}
					if p, ok := kinds[i].(string); ok && (err != nil || !slices.Equal(emb, want[p])) {
						errc <- fmt.Errorf("caller %d input %d (%s) before the cancel: %v", c, i, p, err)
					}
				})
				if err != nil {
					errc <- fmt.Errorf("caller %d: EmbedEach: %v", c, err)
				}
				if cancelled == 0 {
					errc <- fmt.Errorf("caller %d: nothing aborted after cancelling at input 2", c)
				}
				return
			}
			embs, errs, err := e.EmbedBatch(cctx, srcs)
			if err != nil {
				errc <- fmt.Errorf("caller %d: %v", c, err)
				return
			}
			for i, k := range kinds {
				switch k := k.(type) {
				case string:
					if errs[i] != nil || !slices.Equal(embs[i], want[k]) {
						errc <- fmt.Errorf("caller %d input %d (%s): %v, result differs from the sequential one", c, i, k, errs[i])
					}
				case bad:
					if !errors.Is(errs[i], &Error{Code: k.code}) || embs[i] != nil {
						errc <- fmt.Errorf("caller %d input %d (%v): %v, want %s", c, i, k.src, errs[i], k.code)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	// Still usable, still the same results.
	for _, p := range good {
		v, err := e.Embed(ctx, p)
		if err != nil || !slices.Equal(v, want[p]) {
			t.Errorf("after the load: %s: %v", p, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+1 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNativeCloseDuringCalls: Close while calls run makes them fail with
// ModelNotLoaded (or finish), later calls fail with ModelNotLoaded.
func TestNativeCloseDuringCalls(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, Options{Model: modelPath("tiny-f32"), CacheDir: testCache(t), Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(testdataDir, "images", "chelsea.png")
	srcs := make([]any, 40)
	for i := range srcs {
		srcs[i] = img
	}
	done := make(chan error, 1)
	go func() {
		_, errs, err := e.EmbedBatch(ctx, srcs)
		if err == nil {
			for _, ie := range errs {
				if ie != nil && !errors.Is(ie, ErrModelNotLoaded) {
					err = ie
				}
			}
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	e.Close()
	if err := <-done; err != nil && !errors.Is(err, ErrModelNotLoaded) {
		t.Errorf("call during Close: %v", err)
	}
	if _, err := e.Embed(ctx, img); !errors.Is(err, ErrModelNotLoaded) {
		t.Errorf("after Close: %v, want ModelNotLoaded", err)
	}
}
