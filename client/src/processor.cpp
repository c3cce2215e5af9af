#include "runnel/processor.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include "client/src/retry.h"
#include "runnel/admin.h"

namespace runnel {

namespace {

using clock_type = std::chrono::steady_clock;

constexpr std::size_t max_msg_id_bytes = 256;  // the broker's limit on runnel.msg.id
// The longest "group/topic/partition/offset" a topic can give: the
// partition and the offset at their widest.
constexpr std::size_t max_number_bytes = 10 + 19;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A record kept past its poll: its own copy of the bytes.
struct owned_record {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<header> headers;

  explicit owned_record(const record_view& r)
      : topic(r.topic), partition(r.partition), offset(r.offset), timestamp_ms(r.timestamp_ms) {
    if (r.key) key.emplace(*r.key);
    if (r.value) value.emplace(*r.value);
    headers.reserve(r.headers.size());
    for (const auto& h : r.headers) headers.push_back({std::string(h.key), std::string(h.value)});
  }

  [[nodiscard]] record_view view() const {
    record_view v;
    v.topic = topic;
    v.partition = partition;
    v.offset = offset;
    v.timestamp_ms = timestamp_ms;
    if (key) v.key = *key;
    if (value) v.value = *value;
    v.headers.reserve(headers.size());
    for (const auto& h : headers) v.headers.push_back({h.key, h.value});
    return v;
  }
};

enum class stage {
  behind_key,     // an earlier record of its key is not finished
  due,            // the handler runs at `next_attempt`
  to_dlq,         // failed for good: the DLQ write goes at `next_attempt`
  dlq_in_flight,  // the DLQ write is on its way
};

struct pending_record {
  explicit pending_record(const record_view& r) : rec(r) {}
  owned_record rec;
  stage at = stage::behind_key;
  int attempts = 0;  // handler calls so far
  std::string error;
  std::int64_t first_failure_ms = -1;
  std::int64_t last_failure_ms = -1;
  clock_type::time_point next_attempt{};
  int dlq_tries = 0;
};

struct partition_work {
  std::map<std::int64_t, pending_record> pending;  // by offset
  std::unordered_map<std::string, int> keys_pending;  // key -> records of it in `pending`
  std::int64_t next = -1;       // the offset after the last record polled
  std::int64_t committed = -1;  // the last offset sent in a commit
  std::uint64_t generation = 0; // this assignment of the partition (a DLQ ack of an earlier one is stale)
  std::int64_t rewind_to = -1;  // full: the first polled record not taken, to fetch again
};

struct dlq_ack {
  topic_partition_ref source;
  std::uint64_t generation;
  std::int64_t offset;
  result<delivery> r;
};

}  // namespace

std::string dlq_msg_id(std::string_view group, std::string_view topic, std::int32_t partition, std::int64_t offset) {
  std::string id;
  id.reserve(group.size() + topic.size() + 32);
  id.append(group).append("/").append(topic).append("/").append(std::to_string(partition)).append("/");
  id.append(std::to_string(offset));
  return id;
}

struct processor::impl {
  processor_config cfg;
  std::unique_ptr<consumer> cons;
  std::unique_ptr<producer> dlq_producer;
  std::unique_ptr<admin> adm;
  std::map<topic_partition_ref, partition_work> parts;
  std::map<std::string, std::string> dlq_of;  // source topic -> its DLQ topic, once it is fit for use
  // Source topic -> when to try making its DLQ topic again (after a
  // retriable failure: one attempt per backoff, not one per record).
  std::map<std::string, clock_type::time_point> dlq_retry_at;
  int dlq_failures = 0;
  std::uint64_t generations = 0;
  std::mt19937 rng{std::random_device{}()};
  std::atomic<bool> stopping{false};
  std::optional<error> fatal;  // what ends run()

  std::mutex acks_mu;
  std::deque<dlq_ack> acks;  // pushed by the DLQ producer's callbacks
  std::size_t dlq_in_flight = 0;

  mutable std::mutex stats_mu;
  processor_stats counts;

  // Commits before partitions go and forgets what was pending on them:
  // the next owner starts at that commit and handles them again.
  struct listener final : rebalance_listener {
    explicit listener(impl& i) : self(i) {}
    void on_partitions_revoked(consumer& c, const std::vector<topic_partition_ref>& gone) override {
      std::map<topic_partition_ref, offset_and_metadata> offsets;
      for (const auto& tp : gone) {
        auto it = self.parts.find(tp);
        if (it == self.parts.end()) continue;
        if (auto o = commit_point(it->second); o >= 0) offsets[tp] = offset_and_metadata{o, {}, -1, -1};
        self.parts.erase(it);
      }
      if (!offsets.empty()) (void)c.commit_sync(offsets);
    }
    void on_partitions_lost(consumer& /*c*/, const std::vector<topic_partition_ref>& gone) override {
      for (const auto& tp : gone) self.parts.erase(tp);
    }
    impl& self;
  };
  listener rebalances{*this};

  // The clients go first, while what their callbacks touch (the acks, the
  // partitions, the listener) still exists.
  ~impl() {
    if (dlq_producer) dlq_producer->close();
    if (cons) (void)cons->close();
  }
  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  impl(impl&&) = delete;
  impl& operator=(impl&&) = delete;

  partition_work& work_of(const topic_partition_ref& tp) {
    auto [it, fresh] = parts.try_emplace(tp);
    if (fresh) it->second.generation = ++generations;
    return it->second;
  }

  // The offset a commit may name: nothing below it is unfinished.
  static std::int64_t commit_point(const partition_work& pw) {
    return pw.pending.empty() ? pw.next : pw.pending.begin()->first;
  }

  void count(std::int64_t processor_stats::*field, std::int64_t n = 1) {
    std::lock_guard lk(stats_mu);
    counts.*field += n;
  }

  clock_type::duration backoff(int attempts) { return client::retry_backoff(cfg.retry, attempts, rng); }

  // After a failed call: the next attempt, or the DLQ.
  void failed(pending_record& p, process_result res) {
    const auto now_ms = wall_ms();
    if (p.first_failure_ms < 0) p.first_failure_ms = now_ms;
    p.last_failure_ms = now_ms;
    p.error = res.error.empty() ? std::string(res.status == process_status::dead ? "permanent failure" : "retry")
                                : std::move(res.error);
    if (res.status == process_status::dead || p.attempts >= cfg.retry.max_attempts) {
      p.at = stage::to_dlq;
      p.next_attempt = clock_type::now();
    } else {
      p.at = stage::due;
      p.next_attempt = clock_type::now() + backoff(p.attempts);
    }
  }

  void handle_polled(const handler& h, const record_view& r) {
    const topic_partition_ref tp{std::string(r.topic), r.partition};
    auto& pw = work_of(tp);
    if (pw.rewind_to >= 0 || pw.pending.size() >= cfg.max_pending_per_partition) {
      // Full: not taken; fetched again once some of its records finish.
      if (pw.rewind_to < 0) pw.rewind_to = r.offset;
      return;
    }
    pw.next = r.offset + 1;
    if (r.key) {
      if (auto it = pw.keys_pending.find(std::string(*r.key)); it != pw.keys_pending.end()) {
        pending_record p(r);
        pw.pending.emplace(r.offset, std::move(p));
        ++it->second;
        return;
      }
    }
    auto res = client::call_handler(h, r);
    if (res.status == process_status::done) {
      count(&processor_stats::done);
      return;
    }
    pending_record p(r);
    p.attempts = 1;
    failed(p, std::move(res));
    if (r.key) ++pw.keys_pending[std::string(*r.key)];
    pw.pending.emplace(r.offset, std::move(p));
  }

  // The record is finished (done or in the DLQ): the next record of its
  // key, if one waits, is due now.
  void finish(partition_work& pw, std::map<std::int64_t, pending_record>::iterator it) {
    std::optional<std::string> key = it->second.rec.key;
    pw.pending.erase(it);
    if (!key) return;
    auto k = pw.keys_pending.find(*key);
    if (--k->second == 0) {
      pw.keys_pending.erase(k);
      return;
    }
    for (auto& [off, p] : pw.pending) {
      if (p.at == stage::behind_key && p.rec.key == key) {
        p.at = stage::due;
        p.next_attempt = clock_type::now();
        break;
      }
    }
  }

  // The DLQ topic of `source`, created if it does not exist. A retriable
  // error leaves the record waiting; any other ends run().
  result<std::string> dlq_topic(const std::string& source) {
    if (auto it = dlq_of.find(source); it != dlq_of.end()) return it->second;
    const std::string name = cfg.retry.dlq_topic.empty() ? source + ".dlq" : cfg.retry.dlq_topic;
    auto src = adm->describe_topic(source);
    if (!src) return std::unexpected(src.error());
    for (int tries = 0;; ++tries) {
      auto t = adm->describe_topic(name);
      if (t) {
        if (t->partitions.size() < src->partitions.size()) {
          return std::unexpected(error{errc::invalid_config,
                                       "dead-letter topic " + name + " has " + std::to_string(t->partitions.size()) +
                                           " partitions, fewer than the " + std::to_string(src->partitions.size()) +
                                           " of " + source});
        }
        if (cfg.retry.require_dlq_dedup_window) {
          auto c = adm->describe_configs(name);
          if (!c) return std::unexpected(c.error());
          auto w = c->find("dedup.window.ms");
          if (w == c->end() || w->second.value == "0") {
            return std::unexpected(error{errc::invalid_config, "dead-letter topic " + name +
                                                                   " has no message-id window (dedup.window.ms), "
                                                                   "so it could hold a record twice"});
          }
        }
        dlq_of[source] = name;
        return name;
      }
      if (t.error().code != make_error_code(errc::unknown_topic_or_partition)) return std::unexpected(t.error());
      if (tries > 0) {
        // Made, but not visible yet (metadata on its way to this broker).
        if (tries > 25) {
          return std::unexpected(error{errc::timed_out, "dead-letter topic " + name + " was made but is not visible"});
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      std::map<std::string, std::string> configs{
          {"dedup.window.ms", std::to_string(cfg.retry.dlq_dedup_window.count())},
          {"dead.letter.topic", "true"}};
      if (auto sc = adm->describe_configs(source)) {
        if (auto m = sc->find("min.insync.replicas"); m != sc->end() && !m->second.is_default) {
          configs["min.insync.replicas"] = m->second.value;
        }
      }
      const auto rf = static_cast<std::int16_t>(std::max<std::size_t>(1, src->partitions.at(0).replicas.size()));
      auto made = adm->create_topic(name, static_cast<std::int32_t>(src->partitions.size()), rf, configs);
      if (!made && made.error().code != make_error_code(errc::topic_already_exists)) {
        return std::unexpected(error{made.error().code,
                                     "dead-letter topic " + name + " cannot be created: " + made.error().what()});
      }
      // Made (here or by another member): describe it once more.
    }
  }

  // Sends the record's DLQ copy; false: not now (a retriable error).
  bool send_to_dlq(const topic_partition_ref& tp, std::uint64_t generation, pending_record& p) {
    if (auto wait = dlq_retry_at.find(tp.topic); wait != dlq_retry_at.end() && wait->second > clock_type::now()) {
      p.next_attempt = wait->second;
      return false;
    }
    auto name = dlq_topic(tp.topic);
    if (!name) {
      if (retriable(name.error().code) || name.error().code == make_error_code(errc::timed_out)) {
        dlq_retry_at[tp.topic] = p.next_attempt = clock_type::now() + backoff(++dlq_failures);
        return false;
      }
      fatal = name.error();
      return false;
    }
    dlq_failures = 0;
    std::vector<header> hs;
    hs.reserve(p.rec.headers.size() + 11);
    for (const auto& h : p.rec.headers) {
      if (h.key == msg_id_header) {
        hs.push_back({std::string(dlq_header::original_msg_id), h.value});
      } else if (!h.key.starts_with(dlq_header::prefix)) {
        hs.push_back(h);
      }
    }
    hs.push_back({std::string(dlq_header::topic), tp.topic});
    hs.push_back({std::string(dlq_header::partition), std::to_string(tp.partition)});
    hs.push_back({std::string(dlq_header::offset), std::to_string(p.rec.offset)});
    hs.push_back({std::string(dlq_header::timestamp), std::to_string(p.rec.timestamp_ms)});
    hs.push_back({std::string(dlq_header::group), cfg.consumer.group_id});
    hs.push_back({std::string(dlq_header::error), p.error});
    hs.push_back({std::string(dlq_header::attempts), std::to_string(p.attempts)});
    hs.push_back({std::string(dlq_header::first_failure), std::to_string(p.first_failure_ms)});
    hs.push_back({std::string(dlq_header::last_failure), std::to_string(p.last_failure_ms)});
    hs.push_back({std::string(msg_id_header), dlq_msg_id(cfg.consumer.group_id, tp.topic, tp.partition, p.rec.offset)});
    p.at = stage::dlq_in_flight;
    {
      std::lock_guard lk(acks_mu);
      ++dlq_in_flight;
    }
    const auto offset = p.rec.offset;
    std::optional<std::string_view> key;
    if (p.rec.key) key = *p.rec.key;
    dlq_producer->send_to(*name, tp.partition, key, p.rec.value.value_or(""), hs,
                          [this, tp, generation, offset](const result<delivery>& r) {
                            std::lock_guard lk(acks_mu);
                            acks.push_back({tp, generation, offset, r});
                          });
    return true;
  }

  void take_acks() {
    std::deque<dlq_ack> got;
    {
      std::lock_guard lk(acks_mu);
      got.swap(acks);
      dlq_in_flight -= got.size();
    }
    for (auto& a : got) {
      auto pw = parts.find(a.source);
      // Revoked meanwhile (perhaps given back since): its next owner handles it.
      if (pw == parts.end() || pw->second.generation != a.generation) continue;
      auto it = pw->second.pending.find(a.offset);
      if (it == pw->second.pending.end() || it->second.at != stage::dlq_in_flight) continue;
      auto& p = it->second;
      if (!a.r) {
        // Never dropped: the write goes again after a backoff (the msg id
        // makes a first try that landed harmless).
        p.at = stage::to_dlq;
        p.next_attempt = clock_type::now() + backoff(++p.dlq_tries);
        continue;
      }
      count(&processor_stats::dead_lettered);
      if (a.r->duplicate) count(&processor_stats::dlq_duplicates);
      if (cfg.on_dead_letter) {
        dead_letter d{dlq_of.at(a.source.topic), a.r->partition, a.r->offset, a.r->duplicate, p.attempts, p.error};
        try {
          cfg.on_dead_letter(p.rec.view(), d);
        } catch (...) {  // a hook's failure does not undo the DLQ write
        }
      }
      finish(pw->second, it);
    }
  }

  // Handler calls and DLQ writes whose time came, in offset order.
  void run_due(const handler& h) {
    const auto now = clock_type::now();
    for (auto& [tp, pw] : parts) {
      std::vector<std::int64_t> due;
      for (const auto& [off, p] : pw.pending) {
        if ((p.at == stage::due || p.at == stage::to_dlq) && p.next_attempt <= now) due.push_back(off);
      }
      for (auto off : due) {
        auto it = pw.pending.find(off);
        if (it == pw.pending.end()) continue;
        auto& p = it->second;
        if (p.at == stage::to_dlq) {
          send_to_dlq(tp, pw.generation, p);
          if (fatal) return;
          continue;
        }
        if (p.at != stage::due) continue;  // released and finished meanwhile
        if (p.attempts > 0) count(&processor_stats::retries);
        ++p.attempts;
        auto res = client::call_handler(h, p.rec.view());
        if (res.status == process_status::done) {
          count(&processor_stats::done);
          finish(pw, it);
        } else {
          failed(p, std::move(res));
        }
      }
    }
  }

  // When the next handler call or DLQ write is due (max: none).
  [[nodiscard]] clock_type::time_point next_due() const {
    auto t = clock_type::time_point::max();
    for (const auto& [tp, pw] : parts) {
      for (const auto& [off, p] : pw.pending) {
        if (p.at == stage::due || p.at == stage::to_dlq) t = std::min(t, p.next_attempt);
      }
    }
    return t;
  }

  [[nodiscard]] bool full() const {
    return std::any_of(parts.begin(), parts.end(),
                       [&](const auto& kv) { return kv.second.pending.size() >= cfg.max_pending_per_partition; });
  }

  // Partitions that were full at the last poll read their untaken records
  // again (the consumer has no pause: this keeps polling, and so the
  // membership, alive).
  void rewind() {
    for (auto& [tp, pw] : parts) {
      if (pw.rewind_to < 0) continue;
      (void)cons->seek(tp, pw.rewind_to);
      pw.rewind_to = -1;
    }
  }

  // A commit that failed for good: its partitions are committed again
  // next time (unless a later commit already moved them).
  std::function<void(const result<void>&)> on_commit(const std::map<topic_partition_ref, offset_and_metadata>& sent) {
    return [this, sent](const result<void>& r) {
      if (r) return;
      for (const auto& [tp, o] : sent) {
        auto it = parts.find(tp);
        if (it != parts.end() && it->second.committed == o.offset) it->second.committed = -1;
      }
    };
  }

  std::map<topic_partition_ref, offset_and_metadata> commit_points() {
    std::map<topic_partition_ref, offset_and_metadata> offsets;
    for (auto& [tp, pw] : parts) {
      const auto o = commit_point(pw);
      if (o >= 0 && o != pw.committed) {
        offsets[tp] = offset_and_metadata{o, {}, -1, -1};
        pw.committed = o;
      }
    }
    return offsets;
  }
};

processor::processor(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
processor::~processor() = default;

result<std::unique_ptr<processor>> processor::connect(processor_config cfg) {
  if (cfg.consumer.group_id.empty()) return std::unexpected(error{errc::invalid_argument, "a processor needs a group id"});
  if (cfg.topics.empty()) return std::unexpected(error{errc::invalid_argument, "a processor needs topics"});
  if (auto ok = client::check_retry_policy(cfg.retry); !ok) return std::unexpected(ok.error());
  for (const auto& t : cfg.topics) {
    if (cfg.consumer.group_id.size() + t.size() + 3 + max_number_bytes > max_msg_id_bytes) {
      return std::unexpected(error{errc::invalid_argument, "group id and topic " + t +
                                                               " are too long for a DLQ message id (256 bytes)"});
    }
  }
  auto i = std::make_unique<impl>();
  i->cfg = std::move(cfg);
  i->cfg.consumer.enable_auto_commit = false;
  auto c = consumer::connect(i->cfg.consumer);
  if (!c) return std::unexpected(c.error());
  i->cons = std::move(*c);
  producer_config pc;
  pc.bootstrap = i->cfg.consumer.bootstrap;
  pc.client_id = i->cfg.consumer.client_id + "-dlq";
  pc.acks = -1;
  pc.enable_idempotence = true;
  pc.linger = std::chrono::milliseconds(0);
  auto p = producer::connect(pc);
  if (!p) return std::unexpected(p.error());
  i->dlq_producer = std::move(*p);
  admin_config ac;
  ac.bootstrap = i->cfg.consumer.bootstrap;
  ac.client_id = i->cfg.consumer.client_id + "-dlq-admin";
  ac.timeout = i->cfg.consumer.request_timeout;
  auto a = admin::connect(ac);
  if (!a) return std::unexpected(a.error());
  i->adm = std::move(*a);
  if (auto s = i->cons->subscribe(i->cfg.topics, &i->rebalances); !s) return std::unexpected(s.error());
  return std::unique_ptr<processor>(new processor(std::move(i)));
}

result<void> processor::run(const handler& h) {
  auto& i = *impl_;
  using namespace std::chrono_literals;
  auto next_commit = clock_type::now() + i.cfg.commit_interval;
  while (!i.stopping.load() && !i.fatal) {
    i.take_acks();
    i.run_due(h);
    if (i.fatal) break;
    const auto now = clock_type::now();
    if (now >= next_commit) {
      if (auto o = i.commit_points(); !o.empty()) i.cons->commit_async(o, i.on_commit(o));
      next_commit = now + i.cfg.commit_interval;
    }
    // Wait no longer than the next retry; briefly while DLQ acks are due.
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::clamp<clock_type::duration>(i.next_due() - clock_type::now(), 0ms, 100ms));
    {
      std::lock_guard lk(i.acks_mu);
      if (i.dlq_in_flight > 0) wait = std::min<std::chrono::milliseconds>(wait, 5ms);
    }
    if (i.full()) {
      // Records of full partitions are dropped at poll and read again:
      // not more often than every `wait`.
      std::this_thread::sleep_for(wait);
      wait = std::chrono::milliseconds(0);
    }
    auto records = i.cons->poll(wait);
    if (!records) {
      if (retriable(records.error().code)) continue;
      i.fatal = records.error();
      break;
    }
    for (const auto& r : *records) i.handle_polled(h, r);
    i.rewind();
  }
  // Let DLQ writes on their way finish, so their records can be committed.
  (void)i.dlq_producer->flush(i.cfg.consumer.request_timeout);
  i.take_acks();
  if (auto o = i.commit_points(); !o.empty()) (void)i.cons->commit_sync(o);
  (void)i.cons->close();
  if (i.fatal) return std::unexpected(*i.fatal);
  return {};
}

void processor::stop() { impl_->stopping.store(true); }

processor_stats processor::stats() const {
  std::lock_guard lk(impl_->stats_mu);
  return impl_->counts;
}

}  // namespace runnel
