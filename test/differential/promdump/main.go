// promdump parses exposition pages with the Prometheus server's own scrape parsers (model/textparse) and prints
// what the scrape loop would keep of each, for the differential test (test/differential/).
//
// Input on stdin, repeated: a header line "<length> <content-type>\n", then <length> bytes of page.
// Output on stdout, one JSON line per page, in input order:
//
//	{"samples":[[name, [label, value, ...], value, timestamp-or-null], ...]}   labels sorted, __name__ left out
//	{"error":"..."}
//
// Values are Go's shortest round-trip spelling ('g', -1: NaN, +Inf, -Inf); timestamps are int64 milliseconds
// as decimal strings. Besides the parser's own errors, a page fails as the scrape loop fails it: a series
// without a metric name, invalid names or values under UTF-8 validation, or a label name given twice (which
// the TSDB appender refuses).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

type page struct {
	Samples [][]any `json:"samples,omitempty"`
	Error   string  `json:"error,omitempty"`
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for {
		header, err := in.ReadString('\n')
		if errors.Is(err, io.EOF) && header == "" {
			return
		}
		if err != nil {
			fail(fmt.Errorf("reading a page header: %w", err))
		}
		size, contentType, ok := strings.Cut(strings.TrimSuffix(header, "\n"), " ")
		n, convErr := strconv.Atoi(size)
		if !ok || convErr != nil || n < 0 {
			fail(fmt.Errorf("bad page header %q", header))
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(in, body); err != nil {
			fail(fmt.Errorf("reading a page of %d bytes: %w", n, err))
		}
		samples, err := parse(body, contentType)
		var p page
		if err != nil {
			p.Error = err.Error()
		} else {
			p.Samples = samples
			if p.Samples == nil {
				p.Samples = [][]any{}
			}
		}
		if err := enc.Encode(p); err != nil {
			fail(err)
		}
	}
}

// parse reads a page as the scrape loop does (scrape/scrape.go, append): textparse.New, then Next() until EOF,
// keeping series and checking each label set.
func parse(body []byte, contentType string) ([][]any, error) {
	p, err := textparse.New(body, contentType, labels.NewSymbolTable(), textparse.ParserOptions{})
	if p == nil {
		return nil, err
	}
	var samples [][]any
	var lset labels.Labels
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			return samples, nil
		}
		if err != nil {
			return nil, err
		}
		if entry != textparse.EntrySeries {
			if entry == textparse.EntryHistogram {
				return nil, errors.New("unexpected native histogram")
			}
			continue
		}
		_, ts, v := p.Series()
		p.Labels(&lset)
		if !lset.Has(model.MetricNameLabel) {
			return nil, errors.New("series without a metric name")
		}
		if !lset.IsValid(model.UTF8Validation) {
			return nil, fmt.Errorf("invalid metric name or label names: %s", lset.String())
		}
		if name, dup := lset.HasDuplicateLabelNames(); dup {
			return nil, fmt.Errorf("label name %q is not unique", name)
		}
		pairs := []string{}
		lset.Range(func(l labels.Label) {
			if l.Name != model.MetricNameLabel {
				pairs = append(pairs, l.Name, l.Value)
			}
		})
		var stamp any
		if ts != nil {
			stamp = strconv.FormatInt(*ts, 10)
		}
		samples = append(samples, []any{lset.Get(model.MetricNameLabel), pairs, strconv.FormatFloat(v, 'g', -1, 64), stamp})
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "promdump:", err)
	os.Exit(2)
}
