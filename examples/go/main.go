// Command zdd-go is a net/http app for myapp-zdd, standard library only: it
// serves the sockets systemd passes (LISTEN_FDS: fd 3 and on), else $PORT;
// it is ready when /healthz answers; on SIGTERM it answers every request
// with "Connection: close" for 1 s, then stops accepting and finishes what is
// in flight (http.Server.Shutdown), then exits 0.
//
// Notes are JSON lines appended to notes.jsonl in the state directory, each
// fsync'ed before its 201: a note that was acknowledged is on disk. The file
// is shared by the instances that run side by side in a handover (flock).
// (The standard library has no SQLite: these are not the C app's notes.)
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type note struct {
	ID        int64  `json:"id"`
	Text      string `json:"text"`
	CreatedAt string `json:"created_at"`
}

// store keeps the notes in memory and appends each new one to a file that
// every instance of the app shares: during a handover the old and the new
// release run side by side. Each write holds an exclusive flock(2) on the
// file, first reads what other instances appended since (so ids never
// collide), then appends and fsyncs; a read that misses catches up too.
type store struct {
	mu    sync.Mutex
	f     *os.File
	off   int64 // how far the file has been read
	notes map[int64]note
	last  int64
}

func openStore(path string) (*store, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	s := &store{f: f, notes: map[int64]note{}}
	if err := s.locked(syscall.LOCK_EX, func() error { return nil }); err != nil {
		return nil, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // the file's name is durable too
		d.Close()
	}
	return s, nil
}

// locked runs fn holding s.mu and the file lock (how: LOCK_EX or LOCK_SH),
// after reading what was appended since the last time.
func (s *store) locked(how int, fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := syscall.Flock(int(s.f.Fd()), how); err != nil {
		return err
	}
	defer syscall.Flock(int(s.f.Fd()), syscall.LOCK_UN)
	if err := s.catchUp(how == syscall.LOCK_EX); err != nil {
		return err
	}
	return fn()
}

// catchUp reads the lines after s.off. A last line without its newline is
// a write cut short by a crash (never acknowledged): with the exclusive
// lock it is cut off, else left for a writer to cut.
func (s *store) catchUp(exclusive bool) error {
	if _, err := s.f.Seek(s.off, 0); err != nil {
		return err
	}
	r := bufio.NewReader(s.f)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if len(line) > 0 && exclusive {
				if err := s.f.Truncate(s.off); err != nil {
					return err
				}
				return s.f.Sync()
			}
			return nil
		}
		var n note
		if json.Unmarshal(line, &n) != nil || n.ID <= s.last {
			return fmt.Errorf("%s: bad line at byte %d", s.f.Name(), s.off)
		}
		s.notes[n.ID] = n
		s.last = n.ID
		s.off += int64(len(line))
	}
}

func (s *store) add(text string) (id int64, err error) {
	err = s.locked(syscall.LOCK_EX, func() error {
		n := note{ID: s.last + 1, Text: text, CreatedAt: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")}
		line, err := json.Marshal(n)
		if err != nil {
			return err
		}
		line = append(line, '\n')
		if _, err := s.f.WriteAt(line, s.off); err != nil {
			return err
		}
		if err := s.f.Sync(); err != nil {
			return err
		}
		s.notes[n.ID] = n
		s.last = n.ID
		s.off += int64(len(line))
		id = n.ID
		return nil
	})
	return id, err
}

func (s *store) get(id int64) (n note, ok bool, err error) {
	s.mu.Lock()
	n, ok = s.notes[id]
	s.mu.Unlock()
	if ok {
		return n, true, nil
	}
	err = s.locked(syscall.LOCK_SH, func() error {
		n, ok = s.notes[id]
		return nil
	})
	return n, ok, err
}

func (s *store) list(limit int, before int64) (out []note, err error) {
	err = s.locked(syscall.LOCK_SH, func() error {
		out = []note{}
		id := s.last
		if before > 0 && before-1 < id {
			id = before - 1
		}
		for ; id > 0 && len(out) < limit; id-- {
			if n, ok := s.notes[id]; ok {
				out = append(out, n)
			}
		}
		return nil
	})
	return out, err
}

func readFirst(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func reply(w http.ResponseWriter, code int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func positive(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0 && !strings.HasPrefix(s, "0") && !strings.HasPrefix(s, "+")
}

// listeners: the sockets systemd passed, or one on $PORT (default 8000).
func listeners() ([]net.Listener, error) {
	if n, err := strconv.Atoi(os.Getenv("LISTEN_FDS")); err == nil && n > 0 {
		var ls []net.Listener
		for fd := 3; fd < 3+n; fd++ {
			f := os.NewFile(uintptr(fd), "listen")
			l, err := net.FileListener(f) // a dup: the inherited fd is only closed
			f.Close()
			if err != nil {
				return nil, err
			}
			ls = append(ls, l)
		}
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDNAMES")
		return ls, nil
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8000"
	}
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return nil, err
	}
	return []net.Listener{l}, nil
}

func main() {
	log.SetFlags(0)
	release := os.Getenv("ZDD_RELEASE")
	if release == "" {
		release = readFirst("RELEASE")
	}
	revision := readFirst("REVISION")
	state := strings.Split(os.Getenv("STATE_DIRECTORY"), ":")[0]
	if state == "" {
		state = "."
	}
	st, err := openStore(filepath.Join(state, "notes.jsonl"))
	if err != nil {
		log.Fatalf("zdd-go: %v", err)
	}
	started := time.Now()

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]interface{}{"status": "ok", "pid": os.Getpid(), "release": release})
	})
	mux.HandleFunc("/api/status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]interface{}{
			"status": "ok", "app": "go", "pid": os.Getpid(), "release": release, "revision": revision,
			"started_at": started.UTC().Format(time.RFC3339), "uptime": int(time.Since(started).Seconds()),
			"now": time.Now().UTC().Format(time.RFC3339),
		})
	})
	// GET /slow?ms=N answers after N ms (at most 10 s): a request in flight.
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 {
			ms = 2000
		}
		if ms > 10000 {
			ms = 10000
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		reply(w, http.StatusOK, map[string]interface{}{"status": "ok", "slow": ms})
	})
	mux.HandleFunc("/api/notes", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			limit, before := int64(20), int64(0)
			if v := r.URL.Query().Get("limit"); v != "" {
				if n, ok := positive(v); ok && n <= 1000 {
					limit = n
				} else {
					reply(w, 400, map[string]string{"error": "limit must be an integer from 1 to 1000"})
					return
				}
			}
			if v := r.URL.Query().Get("before"); v != "" {
				var ok bool
				if before, ok = positive(v); !ok {
					reply(w, 400, map[string]string{"error": "before must be a note id (a positive integer)"})
					return
				}
			}
			notes, err := st.list(int(limit), before)
			if err != nil {
				log.Printf("zdd-go: reading notes: %v", err)
				reply(w, 500, map[string]string{"error": "storage failure"})
				return
			}
			reply(w, 200, map[string]interface{}{"notes": notes, "truncated": false})
		case http.MethodPost:
			if ct := strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]); !strings.EqualFold(ct, "application/json") {
				reply(w, 415, map[string]string{"error": "Content-Type must be application/json"})
				return
			}
			var body struct {
				Text *string `json:"text"`
			}
			err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 65536)).Decode(&body)
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				reply(w, 413, map[string]string{"error": "body too large"})
				return
			}
			if err != nil || body.Text == nil {
				reply(w, 400, map[string]string{"error": `expected {"text": "..."}`})
				return
			}
			id, err := st.add(*body.Text)
			if err != nil {
				log.Printf("zdd-go: storing a note: %v", err)
				reply(w, 500, map[string]string{"error": "storage failure"})
				return
			}
			reply(w, http.StatusCreated, map[string]int64{"id": id})
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			reply(w, 405, map[string]string{"error": "method not allowed"})
		}
	})
	mux.HandleFunc("/api/notes/", func(w http.ResponseWriter, r *http.Request) {
		id, ok := positive(strings.TrimPrefix(r.URL.Path, "/api/notes/"))
		if !ok {
			reply(w, 404, map[string]string{"error": "no such note"})
			return
		}
		n, found, err := st.get(id)
		if err != nil {
			log.Printf("zdd-go: reading a note: %v", err)
			reply(w, 500, map[string]string{"error": "storage failure"})
			return
		}
		if !found {
			reply(w, 404, map[string]string{"error": "no such note"})
			return
		}
		reply(w, 200, n)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			reply(w, 404, map[string]string{"error": "not found"})
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "go example, release %s\n", release)
	})

	ls, err := listeners()
	if err != nil {
		log.Fatalf("zdd-go: %v", err)
	}
	// Once stopping, every answer closes its connection, so that nginx lets
	// go of it (see the linger below).
	var stopping int32
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if atomic.LoadInt32(&stopping) != 0 {
			w.Header().Set("Connection", "close")
		}
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Longer than nginx's upstream keepalive_timeout (500 ms): the
		// proxy closes an idle connection first.
		IdleTimeout: 5 * time.Second,
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	for _, l := range ls {
		go func(l net.Listener) {
			if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
				log.Fatalf("zdd-go: %v", err)
			}
		}(l)
	}
	<-stop
	// Shutdown closes idle keep-alive connections at once, and one nginx
	// has just written a request on is idle to us: closing it resets a POST
	// nginx must not resend (a 502; 1 in 703 requests in one CI run). nginx
	// drops an idle upstream connection after 500 ms (its
	// keepalive_timeout), so after 1 s of "Connection: close" none is left
	// that nginx could still write on.
	atomic.StoreInt32(&stopping, 1)
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Printf("zdd-go: shutdown: %v", err)
	}
	st.f.Close()
}
