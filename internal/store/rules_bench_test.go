package store_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/store"
)

// Rule-set benchmarks against the redis-server at REDIS_ADDR, with a
// 10,000-rule document (about 1.5 MB of YAML):
//
//	go test -run '^$' -bench 'Rules|Audit' -benchtime 3s ./internal/store

// BenchmarkRulesSave saves a 10,000-rule document that differs from the
// current one in one group name: read current, diff, Lua compare-and-set
// of 1.5 MB. Each iteration adds a version (1.5 MB in Redis).
func BenchmarkRulesSave(b *testing.B) {
	st := openReal(b)
	r := store.NewRules(st, nil)
	ctx := context.Background()
	docs := [2][]byte{rulesDoc(10000, ""), []byte(strings.Replace(string(rulesDoc(10000, "")), "team-05000\n", "team-05000x\n", 1))}
	v, err := r.Save(ctx, 0, docs[0], store.ChangeMeta{Author: "bench"})
	mustf(b, err, "seed")
	b.SetBytes(int64(len(docs[0])))
	b.ReportAllocs()
	i := 1
	for b.Loop() {
		v, err = r.Save(ctx, v.Version, docs[i%2], store.ChangeMeta{Author: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkRulesCurrent reads the current 10,000-rule document and its
// version (what a replica does after a change).
func BenchmarkRulesCurrent(b *testing.B) {
	st := openReal(b)
	r := store.NewRules(st, nil)
	ctx := context.Background()
	doc := rulesDoc(10000, "")
	_, err := r.Save(ctx, 0, doc, store.ChangeMeta{Author: "bench"})
	mustf(b, err, "seed")
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, d, err := r.Current(ctx); err != nil || len(d) != len(doc) {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAuditRecord is one XADD with MAXLEN ~ per event.
func BenchmarkAuditRecord(b *testing.B) {
	st := openReal(b)
	a := store.NewAuditStream(st, 10_000)
	ctx := context.Background()
	ev := audit.Event{Actor: "alice", Action: "login", Result: "success", ClientIP: "192.0.2.1",
		RequestID: "0123456789abcdef", Detail: map[string]string{"ua": "Mozilla/5.0"}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a.Record(ctx, ev)
		}
	})
}

// BenchmarkAuditQuery filters a full 100,000-event stream for an actor
// with one event in 100 (the scan budget bounds the work).
func BenchmarkAuditQuery(b *testing.B) {
	st := openReal(b)
	a := store.NewAuditStream(st, 0)
	ctx := context.Background()
	// Fill the stream fast: pipelined XADDs of what Record would write.
	for chunk := range 100 {
		pipe := st.Client().Pipeline()
		for i := range 1000 {
			actor := "bob"
			if (chunk*1000+i)%100 == 0 {
				actor = "alice"
			}
			e, _ := json.Marshal(audit.Event{Time: time.Now().UTC(), Actor: actor, Action: "login", Result: "success"})
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: st.Key("audit"), Values: []string{"e", string(e)}})
		}
		_, err := pipe.Exec(ctx)
		mustf(b, err, "fill")
	}
	b.ReportAllocs()
	for b.Loop() {
		evs, _, err := a.Query(ctx, store.AuditQuery{Actor: "alice", Limit: 100})
		if err != nil || len(evs) == 0 {
			b.Fatal(err, len(evs))
		}
	}
}
