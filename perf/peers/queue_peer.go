// queue_peer: the queue peers Runnel's share groups are compared with
// (perf/queue_compare.sh, docs/performance.md), measured the way
// runnel-perf measures a share group: produce N messages with
// acknowledged writes, then consume them with C consumers that
// acknowledge each message.
//
//	queue_peer rabbit --url amqp://guest:guest@127.0.0.1:PORT/ --messages N --size 100 --consumers C
//	    [--inflight W] [--prefetch P] [--max-seconds S]
//	  A durable quorum queue (fresh name per run). Produce with publisher
//	  confirms, at most W unconfirmed (a message counts once its confirm
//	  arrived; a nack is a failure). Then C consumers, each its own
//	  connection and channel, basic.qos P, manual ack of each message
//	  (multiple=false), until every confirmed message was acked.
//	queue_peer nats --url nats://127.0.0.1:PORT --messages N --size 100 --consumers C
//	    [--inflight W] [--batch B] [--max-ack-pending A] [--max-seconds S]
//	  A JetStream stream, WorkQueue retention, file storage, one subject
//	  (fresh name per run). Produce with PublishAsync, at most W PubAcks
//	  pending (an error is a failure). Then C consumers, each its own
//	  connection, share one durable pull consumer (AckExplicit,
//	  MaxAckPending A, default max(1000, C*B)): Fetch(B) in a loop and
//	  msg.Ack() each (fire-and-forget, as a RabbitMQ basic.ack is); the
//	  consume time ends after every consumer flushed its acks to the server.
//
// Each payload starts with the message's sequence number (8 bytes, big
// endian): the consumers check that every id arrived at least once and
// count duplicates. produce_rec_s is N / time to the last confirm;
// consume_rec_s is the acked count / time from the consumers' start to the
// last ack. Every loop is bounded by --max-seconds (default 300). One JSON
// line on stdout at the end; errors on stderr; exit 0 only when every
// message was produced, received and acked.
//
// Built offline against Debian's Go sources (./dev.sh peer-deps):
//
//	GO111MODULE=off GOPATH=$TMP/gopath:/usr/share/gocode go build -o queue_peer .
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"
)

type options struct {
	peer          string
	url           string
	messages      int
	size          int
	consumers     int
	inflight      int
	prefetch      int
	batch         int
	maxAckPending int
	maxSeconds    int
}

type result struct {
	Peer           string  `json:"peer"`
	Messages       int     `json:"messages"`
	Size           int     `json:"size"`
	Consumers      int     `json:"consumers"`
	ProduceRecS    float64 `json:"produce_rec_s"`
	ConsumeRecS    float64 `json:"consume_rec_s"`
	ProduceSeconds float64 `json:"produce_seconds"`
	ConsumeSeconds float64 `json:"consume_seconds"`
	Produced       int64   `json:"produced"`
	Acked          int64   `json:"acked"`
	Received       int64   `json:"received"`
	Duplicates     int64   `json:"duplicates"`
	Failed         int64   `json:"failed"`
	Error          string  `json:"error,omitempty"`
}

// tracker records which sequence numbers arrived.
type tracker struct {
	seen       []int32
	received   atomic.Int64 // distinct ids
	duplicates atomic.Int64
	bad        atomic.Int64 // payload without a valid id
}

func newTracker(n int) *tracker { return &tracker{seen: make([]int32, n)} }

func (t *tracker) record(body []byte) {
	if len(body) < 8 {
		t.bad.Add(1)
		return
	}
	id := binary.BigEndian.Uint64(body)
	if id >= uint64(len(t.seen)) {
		t.bad.Add(1)
		return
	}
	if atomic.AddInt32(&t.seen[id], 1) == 1 {
		t.received.Add(1)
	} else {
		t.duplicates.Add(1)
	}
}

func payload(size int, seq int) []byte {
	b := make([]byte, size)
	for i := 8; i < size; i++ {
		b[i] = 'x'
	}
	binary.BigEndian.PutUint64(b, uint64(seq))
	return b
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "queue_peer: "+format+"\n", a...)
	os.Exit(2)
}

func parse(args []string) options {
	if len(args) < 1 || (args[0] != "rabbit" && args[0] != "nats") {
		die("usage: queue_peer rabbit|nats --url URL --messages N --size B --consumers C [--inflight W] [--prefetch P] [--batch B] [--max-ack-pending A] [--max-seconds S]")
	}
	o := options{peer: args[0]}
	fs := flag.NewFlagSet("queue_peer "+o.peer, flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "broker URL")
	fs.IntVar(&o.messages, "messages", 200000, "messages to produce and consume")
	fs.IntVar(&o.size, "size", 100, "message size in bytes (>= 8)")
	fs.IntVar(&o.consumers, "consumers", 1, "consumers, each its own connection")
	fs.IntVar(&o.inflight, "inflight", 1000, "unconfirmed publishes at most")
	fs.IntVar(&o.maxSeconds, "max-seconds", 300, "bound on each phase")
	if o.peer == "rabbit" {
		fs.IntVar(&o.prefetch, "prefetch", 500, "basic.qos prefetch count per consumer")
	} else {
		fs.IntVar(&o.batch, "batch", 500, "Fetch batch size")
		fs.IntVar(&o.maxAckPending, "max-ack-pending", 0, "consumer MaxAckPending (0: max(1000, consumers*batch))")
	}
	if err := fs.Parse(args[1:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() != 0 {
		die("unexpected argument %q", fs.Arg(0))
	}
	if o.url == "" {
		die("--url is required")
	}
	if o.messages < 1 || o.size < 8 || o.consumers < 1 || o.inflight < 1 || o.maxSeconds < 1 {
		die("--messages, --consumers, --inflight, --max-seconds must be >= 1 and --size >= 8")
	}
	if o.peer == "rabbit" && o.prefetch < 1 {
		die("--prefetch must be >= 1")
	}
	if o.peer == "nats" {
		if o.batch < 1 {
			die("--batch must be >= 1")
		}
		if o.maxAckPending == 0 {
			o.maxAckPending = o.consumers * o.batch
			if o.maxAckPending < 1000 {
				o.maxAckPending = 1000
			}
		}
	}
	return o
}

func runName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano())
}

// consumeState is shared by a run's consumers.
type consumeState struct {
	target int64
	acked  atomic.Int64
	done   chan struct{}
	once   sync.Once
	last   atomic.Int64 // unix nanos of the ack that reached target
	errMu  sync.Mutex
	err    error
}

func newConsumeState(target int64) *consumeState {
	return &consumeState{target: target, done: make(chan struct{})}
}

// ack counts one ack; the one that reaches the target ends the run.
func (s *consumeState) ack() {
	if s.acked.Add(1) == s.target {
		s.last.Store(time.Now().UnixNano())
		s.once.Do(func() { close(s.done) })
	}
}

func (s *consumeState) fail(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
	s.once.Do(func() { close(s.done) })
}

func (s *consumeState) firstErr() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *consumeState) finished() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// ---- RabbitMQ ----

func runRabbit(o options, r *result, t *tracker) error {
	conn, err := amqp.Dial(o.url)
	if err != nil {
		return fmt.Errorf("rabbit: connect %s: %w", o.url, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbit: open channel: %w", err)
	}
	queue := runName("runnel-bench")
	if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		return fmt.Errorf("rabbit: declare quorum queue %s: %w", queue, err)
	}
	defer func() {
		if c, err := conn.Channel(); err == nil {
			_, _ = c.QueueDelete(queue, false, false, false)
		}
	}()
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("rabbit: enable publisher confirms: %w", err)
	}
	// Buffered beyond the window so the library never blocks delivering one.
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, o.inflight+1))
	deadline := time.Now().Add(time.Duration(o.maxSeconds) * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	var confirmed, failed int64
	take := func() error {
		select {
		case c, ok := <-confirms:
			if !ok {
				return errors.New("rabbit: channel closed while waiting for confirms")
			}
			if c.Ack {
				confirmed++
			} else {
				failed++
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("rabbit: produce passed --max-seconds %d (%d confirmed)", o.maxSeconds, confirmed)
		}
	}
	start := time.Now()
	for seq := 0; seq < o.messages; seq++ {
		for int64(seq)-confirmed-failed >= int64(o.inflight) {
			if err := take(); err != nil {
				r.Produced, r.Failed = confirmed, failed
				return err
			}
		}
		err := ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent,
			Body:         payload(o.size, seq),
		})
		if err != nil {
			r.Produced, r.Failed = confirmed, failed
			return fmt.Errorf("rabbit: publish: %w", err)
		}
	}
	for confirmed+failed < int64(o.messages) {
		if err := take(); err != nil {
			r.Produced, r.Failed = confirmed, failed
			return err
		}
	}
	produceSecs := time.Since(start).Seconds()
	r.Produced, r.Failed = confirmed, failed
	r.ProduceSeconds, r.ProduceRecS = produceSecs, float64(o.messages)/produceSecs
	if confirmed == 0 {
		return errors.New("rabbit: every publish was nacked")
	}

	return consumeAll(o, r, confirmed, "rabbit", func(st *consumeState, deadline time.Time) error {
		return rabbitConsumer(o, queue, st, t, deadline)
	})
}

func rabbitConsumer(o options, queue string, st *consumeState, t *tracker, deadline time.Time) error {
	conn, err := amqp.Dial(o.url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Qos(o.prefetch, 0, false); err != nil {
		return fmt.Errorf("basic.qos: %w", err)
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("basic.consume: %w", err)
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				if st.finished() {
					return nil
				}
				return errors.New("deliveries closed (channel or connection gone)")
			}
			t.record(d.Body)
			if err := d.Ack(false); err != nil {
				return fmt.Errorf("basic.ack: %w", err)
			}
			st.ack()
		case <-st.done:
			return nil
		case <-timer.C:
			return fmt.Errorf("passed --max-seconds %d", o.maxSeconds)
		}
	}
}

// ---- NATS JetStream ----

func runNats(o options, r *result, t *tracker) error {
	nc, err := nats.Connect(o.url, nats.Timeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("nats: connect %s: %w", o.url, err)
	}
	defer nc.Close()
	js, err := nc.JetStream(nats.PublishAsyncMaxPending(o.inflight), nats.MaxWait(10*time.Second))
	if err != nil {
		return fmt.Errorf("nats: JetStream context: %w", err)
	}
	stream := runName("runnel_bench")
	subject := stream + ".q"
	_, err = js.AddStream(&nats.StreamConfig{
		Name:      stream,
		Subjects:  []string{subject},
		Retention: nats.WorkQueuePolicy,
		Storage:   nats.FileStorage,
		Replicas:  1,
	})
	if err != nil {
		return fmt.Errorf("nats: add stream %s: %w", stream, err)
	}
	defer func() { _ = js.DeleteStream(stream) }()
	const durable = "workers"
	_, err = js.AddConsumer(stream, &nats.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     nats.AckExplicitPolicy,
		FilterSubject: subject,
		MaxAckPending: o.maxAckPending,
	})
	if err != nil {
		return fmt.Errorf("nats: add consumer: %w", err)
	}

	deadline := time.Now().Add(time.Duration(o.maxSeconds) * time.Second)
	// At most --inflight PubAcks pending: a slot is taken before each
	// publish and given back when its PubAck (or error) arrived.
	slots := make(chan struct{}, o.inflight)
	futures := make(chan nats.PubAckFuture, o.inflight)
	var confirmed, failed atomic.Int64
	collectorErr := make(chan error, 1)
	start := time.Now()
	go func() {
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		for f := range futures {
			select {
			case <-f.Ok():
				confirmed.Add(1)
			case <-f.Err():
				failed.Add(1)
			case <-timer.C:
				collectorErr <- fmt.Errorf("nats: produce passed --max-seconds %d (%d acknowledged)", o.maxSeconds, confirmed.Load())
				return
			}
			<-slots
		}
		collectorErr <- nil
	}()
	var produceErr error
	produceTimer := time.NewTimer(time.Until(deadline))
	defer produceTimer.Stop()
	for seq := 0; seq < o.messages && produceErr == nil; seq++ {
		select {
		case slots <- struct{}{}:
		case <-produceTimer.C:
			produceErr = fmt.Errorf("nats: produce passed --max-seconds %d (%d acknowledged)", o.maxSeconds, confirmed.Load())
			continue
		}
		f, err := js.PublishAsync(subject, payload(o.size, seq))
		if err != nil {
			produceErr = fmt.Errorf("nats: PublishAsync: %w", err)
			continue
		}
		futures <- f
	}
	close(futures)
	if err := <-collectorErr; err != nil && produceErr == nil {
		produceErr = err
	}
	produceSecs := time.Since(start).Seconds()
	r.Produced, r.Failed = confirmed.Load(), failed.Load()
	if produceErr != nil {
		return produceErr
	}
	r.ProduceSeconds, r.ProduceRecS = produceSecs, float64(o.messages)/produceSecs
	if r.Produced == 0 {
		return errors.New("nats: every publish failed")
	}

	return consumeAll(o, r, r.Produced, "nats", func(st *consumeState, deadline time.Time) error {
		return natsConsumer(o, stream, subject, durable, st, t, deadline)
	})
}

func natsConsumer(o options, stream, subject, durable string, st *consumeState, t *tracker, deadline time.Time) error {
	nc, err := nats.Connect(o.url, nats.Timeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		return fmt.Errorf("JetStream context: %w", err)
	}
	sub, err := js.PullSubscribe(subject, durable, nats.Bind(stream, durable))
	if err != nil {
		return fmt.Errorf("pull subscribe: %w", err)
	}
	// A Fetch waiting on an empty stream returns as soon as the run is done.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-st.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for !st.finished() {
		if time.Now().After(deadline) {
			return fmt.Errorf("passed --max-seconds %d", o.maxSeconds)
		}
		fctx, fcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		msgs, err := sub.Fetch(o.batch, nats.Context(fctx))
		fcancel()
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) &&
			!errors.Is(err, context.Canceled) {
			return fmt.Errorf("fetch: %w", err)
		}
		for _, m := range msgs {
			t.record(m.Data)
			if err := m.Ack(); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
			st.ack()
		}
	}
	// Ack() only queues the ack on the connection: wait until the server
	// has read everything this connection sent (PING/PONG).
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("flush acks: %w", err)
	}
	return nil
}

// ---- common ----

// consumeAll runs o.consumers consumers side by side until `produced`
// messages were acknowledged or o.maxSeconds passed, then reports.
func consumeAll(o options, r *result, produced int64, peer string, consume func(*consumeState, time.Time) error) error {
	st := newConsumeState(produced)
	deadline := time.Now().Add(time.Duration(o.maxSeconds) * time.Second)
	var wg sync.WaitGroup
	cstart := time.Now()
	for i := 0; i < o.consumers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := consume(st, deadline); err != nil {
				st.fail(fmt.Errorf("%s consumer %d: %w", peer, i, err))
			}
		}(i)
	}
	wg.Wait()
	return finishConsume(o, r, st, cstart)
}

func finishConsume(o options, r *result, st *consumeState, cstart time.Time) error {
	end := time.Now() // after every consumer returned (NATS: flushed its acks)
	r.Acked = st.acked.Load()
	if last := st.last.Load(); last != 0 && o.peer == "rabbit" {
		end = time.Unix(0, last)
	}
	secs := end.Sub(cstart).Seconds()
	r.ConsumeSeconds = secs
	if secs > 0 {
		r.ConsumeRecS = float64(r.Acked) / secs
	}
	if err := st.firstErr(); err != nil {
		return err
	}
	return nil
}

func main() {
	o := parse(os.Args[1:])
	r := result{Peer: o.peer, Messages: o.messages, Size: o.size, Consumers: o.consumers}
	t := newTracker(o.messages)
	var err error
	if o.peer == "rabbit" {
		err = runRabbit(o, &r, t)
	} else {
		err = runNats(o, &r, t)
	}
	r.Received, r.Duplicates = t.received.Load(), t.duplicates.Load()
	if err == nil && r.Failed > 0 {
		err = fmt.Errorf("%s: %d publishes failed", o.peer, r.Failed)
	}
	if err == nil && t.bad.Load() > 0 {
		err = fmt.Errorf("%s: %d messages without a valid id", o.peer, t.bad.Load())
	}
	if err == nil && r.Received < int64(o.messages) {
		err = fmt.Errorf("%s: received %d of %d ids", o.peer, r.Received, o.messages)
	}
	if err != nil {
		r.Error = err.Error()
		fmt.Fprintf(os.Stderr, "queue_peer: %v\n", err)
	}
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
	if err != nil {
		os.Exit(1)
	}
}
