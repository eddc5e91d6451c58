package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestOpenImageSpecialFiles: only regular files are read; devices, symlinks
// to them, FIFOs and directories fail at once with InvalidInput, a file
// over the cap with ImageTooLarge before it is read, for both engines.
func TestOpenImageSpecialFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix special files")
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.png")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "zero.png")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	// A sparse file over the cap: reading it would take 300 MB.
	big := filepath.Join(dir, "big.png")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(300 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cases := []struct {
		path string
		code Code
	}{
		{"/dev/zero", InvalidInput},
		{"/dev/urandom", InvalidInput},
		{link, InvalidInput},
		{fifo, InvalidInput},
		{dir, InvalidInput},
		{big, ImageTooLarge},
		{filepath.Join(dir, "missing.png"), InvalidInput},
	}
	for _, c := range cases {
		done := make(chan error, 1)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		go func() {
			_, err := openImage(c.path)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, &Error{Code: c.code}) {
				t.Errorf("%s: %v, want %s", c.path, err, c.code)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: openImage still running after 5 s", c.path)
		}
		runtime.ReadMemStats(&ms)
		if n := ms.TotalAlloc - before; n > 1<<20 {
			t.Errorf("%s: %d bytes allocated, want nothing read", c.path, n)
		}
	}

	// Through the API of both engines: the later inputs still run.
	ctx := context.Background()
	good := filepath.Join(testdataDir, "images", "chelsea.png")
	for _, eng := range []Engine{EngineNative, EngineWasm} {
		e, err := New(ctx, Options{Engine: eng, Model: modelPath("tiny-f32"), CacheDir: testCache(t), Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		srcs := []any{fifo, "/dev/zero", link, big, good}
		_, errs, err := e.EmbedBatch(cctx, srcs)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", eng, err)
		}
		for i, want := range []Code{InvalidInput, InvalidInput, InvalidInput, ImageTooLarge} {
			if !errors.Is(errs[i], &Error{Code: want}) {
				t.Errorf("%s: %v: %v, want %s", eng, srcs[i], errs[i], want)
			}
		}
		if errs[4] != nil {
			t.Errorf("%s: the good image after them: %v", eng, errs[4])
		}
		e.Close()
	}
}

// TestReaderBounded: an io.Reader source is read up to the cap only.
func TestReaderBounded(t *testing.T) {
	f, err := os.Open("/dev/zero")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	_, err = readSource(f)
	if !errors.Is(err, ErrImageTooLarge) {
		t.Errorf("endless reader: %v, want ImageTooLarge", err)
	}
}
