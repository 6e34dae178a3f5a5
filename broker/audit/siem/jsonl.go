package siem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
)

// FileOptions configure a File sink.
type FileOptions struct {
	// Path is the current file; rotated files are Path + "." + the UTC
	// time of the rotation (20060102T150405.000000), so they sort by
	// name in the order they were written.
	Path string
	// MaxSize rotates the file before it would exceed this many bytes (0:
	// no size limit).
	MaxSize int64
	// Daily rotates the file at the first write of each new day (in the
	// clock's time zone).
	Daily bool
	// MaxFiles is how many rotated files are kept (0: all); the oldest
	// are deleted at rotation.
	MaxFiles int
	Clock    func() time.Time
}

// File writes events as JSON lines (audit.JSONEvent, one per line) to a
// file, rotated by size and/or by day, for a log shipper to forward.
//
// Each Send writes its batch and then fsyncs the file before returning:
// the cursor moves only past events that are on disk, so a crash or a
// power cut loses none (it may repeat the last batch). The file is
// created with mode 0600: it holds personal data.
type File struct {
	o      FileOptions
	f      *os.File
	size   int64
	day    string
	closed bool
}

// NewFile returns a File sink; the directory must exist.
func NewFile(o FileOptions) (*File, error) {
	if o.Path == "" {
		return nil, errors.New("siem: file sink needs a path")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if fi, err := os.Stat(filepath.Dir(o.Path)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("siem: directory of %s: not a directory (%v)", o.Path, err)
	}
	return &File{o: o}, nil
}

func (s *File) open() error {
	f, err := os.OpenFile(s.o.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("siem: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("siem: %w", err)
	}
	s.f, s.size = f, fi.Size()
	// A file kept from before a restart belongs to the day it was last
	// written.
	s.day = fi.ModTime().In(s.o.Clock().Location()).Format(time.DateOnly)
	if fi.Size() == 0 {
		s.day = s.o.Clock().Format(time.DateOnly)
	}
	return nil
}

// Send implements Sink.
func (s *File) Send(_ context.Context, events []store.AuditEvent) error {
	if s.closed {
		return errors.New("siem: file sink closed")
	}
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	var pending bytes.Buffer
	for _, e := range events {
		line, err := audit.MarshalJSON(e)
		if err != nil {
			return fmt.Errorf("siem: event %d: %w", e.ID, err)
		}
		line = append(line, '\n')
		size := s.size + int64(pending.Len())
		full := s.o.MaxSize > 0 && size > 0 && size+int64(len(line)) > s.o.MaxSize
		newDay := s.o.Daily && size > 0 && s.o.Clock().Format(time.DateOnly) != s.day
		if full || newDay {
			if err := s.write(&pending); err != nil {
				return err
			}
			if err := s.rotate(); err != nil {
				return err
			}
		}
		pending.Write(line)
	}
	return s.write(&pending)
}

// write appends pending to the file and syncs it.
func (s *File) write(pending *bytes.Buffer) error {
	if pending.Len() == 0 {
		return nil
	}
	n, err := s.f.Write(pending.Bytes())
	s.size += int64(n)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		// Reopen next time: the batch is sent again from the cursor.
		s.f.Close()
		s.f = nil
		return fmt.Errorf("siem: write %s: %w", s.o.Path, err)
	}
	pending.Reset()
	return nil
}

func (s *File) rotate() error {
	if err := s.f.Close(); err != nil {
		s.f = nil
		return fmt.Errorf("siem: close %s: %w", s.o.Path, err)
	}
	s.f = nil
	rotated := s.o.Path + "." + s.o.Clock().UTC().Format("20060102T150405.000000")
	if _, err := os.Stat(rotated); err == nil {
		// Two rotations within a microsecond (a tiny MaxSize): never
		// overwrite one.
		for i := 1; ; i++ {
			if _, err := os.Stat(fmt.Sprintf("%s-%d", rotated, i)); errors.Is(err, os.ErrNotExist) {
				rotated = fmt.Sprintf("%s-%d", rotated, i)
				break
			}
		}
	}
	if err := os.Rename(s.o.Path, rotated); err != nil {
		return fmt.Errorf("siem: rotate %s: %w", s.o.Path, err)
	}
	if err := s.prune(); err != nil {
		return err
	}
	return s.open()
}

// Rotated lists the rotated files of path, oldest first.
func Rotated(path string) ([]string, error) {
	matches, err := filepath.Glob(globEscape(path) + ".*")
	if err != nil {
		return nil, err
	}
	slices.Sort(matches)
	return matches, nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

func (s *File) prune() error {
	if s.o.MaxFiles <= 0 {
		return nil
	}
	files, err := Rotated(s.o.Path)
	if err != nil {
		return fmt.Errorf("siem: list rotated files: %w", err)
	}
	for len(files) > s.o.MaxFiles {
		if err := os.Remove(files[0]); err != nil {
			return fmt.Errorf("siem: remove old file: %w", err)
		}
		files = files[1:]
	}
	return nil
}

// Close implements Sink.
func (s *File) Close() error {
	s.closed = true
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
