#include "runnel/producer.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "client/src/cluster_view.h"
#include "client/src/connection_pool.h"
#include "client/src/metadata_cache.h"
#include "client/src/requests.h"
#include "client/src/zk_bootstrap.h"
#include "schemas/batch.h"
#include "schemas/partitioner.h"

namespace runnel {

namespace {

using clock_type = std::chrono::steady_clock;
using tp_key = std::pair<std::string, std::int32_t>;

std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

struct producer::impl {
  struct accumulator {
    schemas::batch_builder builder;
    std::vector<callback> callbacks;
    clock_type::time_point first;
    std::size_t reserved = 0;  // of buffer.memory
  };
  struct sealed {
    tp_key tp;
    std::vector<std::byte> bytes;
    std::vector<callback> callbacks;
    std::size_t reserved = 0;  // of buffer.memory, given back when its outcome is known
    clock_type::time_point deadline;
    clock_type::time_point retry_at;
    int attempts = 0;
    std::optional<error> last_error;  // why it is still here (a failed attempt, no leader)
    std::int32_t failed_on = -1;       // the broker of its last attempt, when that leader may have moved
    // Idempotence: stamped when first sent, kept across retries.
    std::int32_t base_sequence = -1;
    std::int16_t epoch = -1;
    std::uint64_t order = 0;  // seal order: a partition's batches go (and go again) in it
  };
  // One Produce request to one leader broker.
  struct request_plan {
    client::host_port address;
    std::vector<sealed> batches;
    std::size_t bytes = 0;
  };
  // A leader broker's connection as the producer sees it; I/O thread only.
  struct broker_state {
    int in_flight = 0;  // requests, at most max_in_flight
    int consecutive_failures = 0;
    clock_type::time_point breaker_until{};
  };

  producer_config cfg;
  std::unique_ptr<client::metadata_cache> meta;

  std::mutex mu;  // guards everything below (user threads and the I/O thread)
  std::condition_variable idle;
  std::condition_variable space;  // buffer.memory: `buffered` went down
  std::size_t buffered = 0;       // reserved by records not yet completed
  std::map<tp_key, accumulator> accumulators;
  std::map<std::string, std::int32_t, std::less<>> sticky;
  std::deque<sealed> ready;
  std::size_t outstanding = 0;  // records sent or buffered, not yet completed
  // When the oldest buffered batch has lingered long enough. A send that
  // finds it past kicks the I/O thread itself: under load, batches leave on
  // time without waiting for the tick timer, whose wake-ups can be
  // milliseconds late on a busy or virtual machine.
  clock_type::time_point next_due = clock_type::time_point::max();
  bool flushing = false;
  bool closed = false;
  std::atomic<bool> dying{false};  // ~impl: send nothing more

  // I/O thread only.
  std::map<std::int32_t, broker_state> brokers;  // by broker id
  int in_flight = 0;                             // requests, all brokers
  std::unique_ptr<asio::steady_timer> ticker;
  bool ticking = true;  // cleared by close(); the tick loop then ends
  bool parked = false;  // the tick loop sleeps until a record arrives (I/O thread)
  std::mt19937 rng{std::random_device{}()};     // sticky partitions; under `mu`
  std::mt19937 io_rng{std::random_device{}()};  // retry jitter; I/O thread only
  // Batches in flight per partition (under `mu`): at most one without
  // idempotence (order across retries), cfg.max_in_flight_per_partition with it
  // (the sequences keep the order: the broker refuses a batch whose
  // predecessor did not land, and the producer sends them again in order).
  std::map<tp_key, int> partition_in_flight;
  std::uint64_t next_order = 0;

  // Idempotence (under `mu`): the producer's id and epoch, each partition's
  // next sequence in this epoch, its stamped batches not yet done (`unacked`, by seal
  // order, with their epoch), and the partitions that wait for their
  // batches in flight to come back before sending again (one failed).
  bool idempotent = false;
  std::int64_t producer_id = -1;
  std::int16_t producer_epoch = 0;
  std::map<tp_key, std::int32_t> next_sequence;
  std::map<tp_key, std::map<std::uint64_t, std::int16_t>> unacked;
  std::set<tp_key> recovering;

  // Declared last, destroyed first: its I/O thread is joined while every
  // member its callbacks touch still exists.
  std::unique_ptr<client::connection_pool> pool;

  void seal_locked(const tp_key& tp, accumulator& a) {
    // delivery.timeout counts from the batch's first record, as Kafka counts from send().
    sealed s{tp, a.builder.finish(), std::move(a.callbacks), a.reserved, a.first + cfg.delivery_timeout, {}, 0, std::nullopt};
    s.order = next_order++;
    a.callbacks.clear();
    a.reserved = 0;
    ready.push_back(std::move(s));
    unstick_locked(tp);
  }

  // A batch's first send: the producer's id, epoch and the partition's
  // next sequence (its records take that many).
  void stamp_locked(sealed& b) {
    auto& seq = next_sequence[b.tp];
    b.base_sequence = seq;
    b.epoch = producer_epoch;
    schemas::stamp_producer(b.bytes, ::runnel::producer_id(producer_id), producer_epoch, seq);
    const auto records = static_cast<std::int64_t>(b.callbacks.size());
    seq = static_cast<std::int32_t>((std::int64_t{seq} + records) % (std::int64_t{INT32_MAX} + 1));
    unacked[b.tp][b.order] = producer_epoch;
  }

  // `b` is done (delivered or failed for good), or goes to be stamped again.
  void forget_locked(const sealed& b) {
    if (b.base_sequence < 0) return;
    auto it = unacked.find(b.tp);
    if (it == unacked.end()) return;
    it->second.erase(b.order);
    if (it->second.empty()) unacked.erase(it);
  }

  // An OUT_OF_ORDER_SEQUENCE that only says an older batch of the same
  // epoch has not landed yet (it is in flight or waits to go again).
  bool predecessor_pending_locked(const sealed& b) const {
    auto it = unacked.find(b.tp);
    if (it == unacked.end()) return false;
    for (const auto& [order, epoch] : it->second) {
      if (order >= b.order) break;
      if (epoch == b.epoch) return true;
    }
    return false;
  }

  [[nodiscard]] int in_flight_of(const tp_key& tp) const {
    auto it = partition_in_flight.find(tp);
    return it == partition_in_flight.end() ? 0 : it->second;
  }

  // Whether `b` (its partition's oldest batch not yet placed) may go now.
  bool may_send_locked(const sealed& b) const {
    const int n = in_flight_of(b.tp);
    if (n >= (idempotent ? cfg.max_in_flight_per_partition : 1)) return false;
    if (n > 0 && recovering.contains(b.tp)) return false;
    if (idempotent && b.base_sequence < 0) {
      // Stamped with this epoch only once no batch of an older epoch is out.
      if (auto it = unacked.find(b.tp); it != unacked.end()) {
        for (const auto& [order, epoch] : it->second) {
          if (epoch != producer_epoch) return false;
        }
      }
    }
    return true;
  }

  // A batch back for another attempt: after its partition's older batches
  // and before its newer ones (seal order); first when none is queued.
  void requeue_locked(sealed b) {
    auto pos = ready.begin();
    for (auto it = ready.begin(); it != ready.end(); ++it) {
      if (it->tp != b.tp) continue;
      if (it->order > b.order) {
        pos = it;
        break;
      }
      pos = std::next(it);
    }
    ready.insert(pos, std::move(b));
  }

  // The partition lost track of this producer's sequences (a gap, or it
  // forgot the producer): a new epoch starts every partition at 0, and `b`
  // goes again with it. Only once per epoch: other batches of the same
  // epoch that fail the same way just take the new one.
  void restart_sequences_locked(sealed& b) {
    if (b.epoch == producer_epoch) {
      ++producer_epoch;
      next_sequence.clear();
    }
    forget_locked(b);
    b.base_sequence = -1;
  }

  // What a batch whose delivery.timeout passed reports: the last error it
  // met itself (STORAGE_FULL, no leader, ...), or that it timed out.
  static error expiry_error(const sealed& b) {
    return b.last_error.value_or(
        error{errc::timed_out, b.tp.first + "/" + std::to_string(b.tp.second) + ": delivery.timeout passed before it was written"});
  }

  void unstick_locked(const tp_key& tp) {
    if (auto it = sticky.find(tp.first); it != sticky.end() && it->second == tp.second) sticky.erase(it);
  }

  // A batch of `tp` sealed now would wait: one is in flight or queued before it.
  bool busy_locked(const tp_key& tp) const {
    return in_flight_of(tp) > 0 || std::any_of(ready.begin(), ready.end(), [&](const sealed& s) { return s.tp == tp; });
  }

  // Sticky partitioning for records without a key: a random partition,
  // preferring (among up to 16 from there) one with nothing buffered, in
  // flight or queued, so a new batch does not wait behind another's round
  // trip (acks=all: its fsync).
  std::int32_t pick_sticky_locked(std::string_view topic, std::int32_t count) {
    const auto start = static_cast<std::int32_t>(rng() % static_cast<unsigned>(count));
    for (std::int32_t i = 0; i < std::min(count, 16); ++i) {
      tp_key tp{std::string(topic), (start + i) % count};
      auto a = accumulators.find(tp);
      if ((a == accumulators.end() || a->second.builder.empty()) && !busy_locked(tp)) return tp.second;
    }
    return start;
  }

  // `dropped`: records the message-id window dropped (index -> the first
  // copy's offset); the others keep their offset in the batch.
  void complete(std::vector<callback>& cbs, std::size_t reserved, const result<delivery>& first, bool success,
                const std::map<std::int32_t, std::int64_t>& dropped = {}) {
    {
      std::lock_guard lock(mu);
      buffered -= reserved;
    }
    space.notify_all();
    for (std::size_t i = 0; i < cbs.size(); ++i) {
      if (success) {
        delivery d = *first;
        if (auto it = dropped.find(static_cast<std::int32_t>(i)); it != dropped.end()) {
          d.offset = it->second;
          d.duplicate = true;
        } else if (d.offset >= 0) {
          d.offset += static_cast<std::int64_t>(i);
        }
        if (cbs[i]) cbs[i](d);
      } else if (cbs[i]) {
        cbs[i](first);
      }
    }
    std::lock_guard lock(mu);
    outstanding -= cbs.size();
    if (outstanding == 0) idle.notify_all();
  }

  // I/O thread: seal what lingered long enough, send what is ready to its
  // partition's leader, fail what waited past its delivery timeout.
  void drain() {
    if (dying.load()) return;  // the I/O thread is being torn down
    const auto now = clock_type::now();
    std::vector<sealed> expired;
    std::set<std::string> need_metadata;
    // Per leader broker, requests of ready batches; built under `mu`, sent
    // after it (encoding and copying them need no lock).
    std::map<std::int32_t, std::vector<request_plan>> plans;
    {
      std::lock_guard lock(mu);
      next_due = clock_type::time_point::max();
      for (auto& [tp, a] : accumulators) {
        if (a.builder.empty()) continue;
        if (flushing || closed) {
          seal_locked(tp, a);
        } else if (now - a.first >= cfg.linger) {
          // Due. A batch that would only wait behind its partition's
          // batch in flight stays open and keeps filling (up to
          // batch_bytes), as Kafka's accumulator does; the response's
          // drain() seals it. New keyless records go elsewhere meanwhile.
          if (busy_locked(tp)) {
            unstick_locked(tp);
          } else {
            seal_locked(tp, a);
          }
        } else {
          next_due = std::min(next_due, a.first + cfg.linger);
        }
      }
      // Per partition, batches in seal order, each in a later request than
      // the one before it (a request carries one batch of a partition),
      // each request up to ~4 MiB. A partition whose oldest ready batch
      // waits (retry time, no leader, breaker, in-flight limits) sends
      // nothing newer: order per partition.
      std::set<tp_key> blocked;
      std::map<tp_key, std::size_t> last_request;  // index in plans[leader] of the partition's last batch
      for (auto it = ready.begin(); it != ready.end();) {
        if (now >= it->deadline && in_flight_of(it->tp) == 0) {
          forget_locked(*it);
          expired.push_back(std::move(*it));
          it = ready.erase(it);
          continue;
        }
        if (!blocked.contains(it->tp) && it->retry_at > now && it->failed_on >= 0) {
          // Backing off from a leader that may be gone: the backoff is for
          // that broker, not for the partition's new leader. Look again
          // (rate-limited by retry.backoff) and go as soon as it is known.
          auto leader = meta->cached_leader(it->tp.first, it->tp.second);
          if (leader && leader->broker != it->failed_on) {
            it->retry_at = now;
          } else {
            need_metadata.insert(it->tp.first);
          }
        }
        if (blocked.contains(it->tp) || it->retry_at > now || !may_send_locked(*it)) {
          blocked.insert(it->tp);
          ++it;
          continue;
        }
        auto leader = meta->cached_leader(it->tp.first, it->tp.second);
        if (!leader) {
          it->last_error = leader.error();
          need_metadata.insert(it->tp.first);
          blocked.insert(it->tp);
          ++it;
          continue;
        }
        auto& reqs = plans[leader->broker];
        auto last = last_request.find(it->tp);
        const bool partition_in_last = last != last_request.end() && last->second + 1 == reqs.size();
        if (reqs.empty() || reqs.back().bytes >= (4U << 20) || partition_in_last) {
          const auto& b = brokers[leader->broker];
          if (now < b.breaker_until || b.in_flight + static_cast<int>(reqs.size()) >= cfg.max_in_flight) {
            // A broker that keeps failing may have lost its leaderships:
            // look again (rate-limited), so batches move to a new leader
            // instead of waiting out this broker's breaker.
            if (now < b.breaker_until) need_metadata.insert(it->tp.first);
            blocked.insert(it->tp);
            ++it;
            continue;
          }
          reqs.push_back(request_plan{leader->address, {}, 0});
        }
        reqs.back().bytes += it->bytes.size();
        if (idempotent && it->base_sequence < 0) stamp_locked(*it);
        ++partition_in_flight[it->tp];
        last_request[it->tp] = reqs.size() - 1;
        reqs.back().batches.push_back(std::move(*it));
        it = ready.erase(it);
      }
    }
    for (auto& [broker, reqs] : plans) {
      for (auto& r : reqs) {
        ++brokers[broker].in_flight;
        ++in_flight;
        send_request(broker, std::move(r));
      }
    }
    for (auto& b : expired) complete(b.callbacks, b.reserved, std::unexpected(expiry_error(b)), false);
    for (const auto& topic : need_metadata) refresh_metadata(topic);
  }

  // I/O thread: look the topic's leaders up again (not more often than
  // retry_backoff); batches waiting for a leader leave once it is known.
  void refresh_metadata(const std::string& topic) {
    if (dying.load()) return;
    meta->maybe_refresh(topic, cfg.retry_backoff, [this] {
      wake();
      drain();
    });
  }

  void send_request(std::int32_t broker, request_plan plan) {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<std::byte> payload;
    std::map<std::string, std::vector<flatbuffers::Offset<wire::ProducePartition>>> by_topic;
    for (auto& b : plan.batches) {
      wire::PayloadRef ref(static_cast<std::uint32_t>(payload.size()), static_cast<std::uint32_t>(b.bytes.size()));
      payload.insert(payload.end(), b.bytes.begin(), b.bytes.end());
      by_topic[b.tp.first].push_back(wire::CreateProducePartition(fbb, b.tp.second, &ref));
    }
    std::vector<flatbuffers::Offset<wire::ProduceTopic>> topics;
    for (auto& [name, parts] : by_topic) topics.push_back(wire::CreateProduceTopicDirect(fbb, name.c_str(), &parts));
    auto body = wire::CreateProduceRequestDirect(fbb, static_cast<std::int8_t>(cfg.acks),
                                                 static_cast<std::int32_t>(cfg.request_timeout.count()), &topics);
    auto& connection = pool->at(plan.address);
    auto shared = std::make_shared<std::vector<sealed>>(std::move(plan.batches));
    connection.call(std::move(fbb), wire::Request::ProduceRequest, body.Union(), std::move(payload),
                    [this, broker, shared](result<client::response> r) { on_response(broker, *shared, std::move(r)); },
                    cfg.acks != 0);
  }

  void on_response(std::int32_t broker, std::vector<sealed>& batches, result<client::response> r) {
    auto& state = brokers[broker];
    --state.in_flight;
    --in_flight;
    {
      std::lock_guard lock(mu);
      for (const auto& b : batches) {
        if (--partition_in_flight[b.tp] <= 0) partition_in_flight.erase(b.tp);
      }
    }
    std::vector<sealed> retries;
    std::set<std::string> stale_topics;
    const auto now = clock_type::now();
    const auto request_error = client::request_error(r);
    if (request_error) {
      if (++state.consecutive_failures >= cfg.breaker_failures) state.breaker_until = now + cfg.breaker_open;
    } else {
      state.consecutive_failures = 0;
    }
    for (auto& b : batches) {
      std::optional<error> err = request_error;
      delivery d{b.tp.second, -1, -1, false, false};
      std::map<std::int32_t, std::int64_t> dropped;
      if (!err && cfg.acks != 0) {
        err = error{errc::bad_response, "no result for partition"};
        const auto* resp = r->envelope->body_as_ProduceResponse();
        if (resp != nullptr && resp->topics() != nullptr) {
          for (const auto* t : *resp->topics()) {
            if (t->name() == nullptr || t->name()->string_view() != b.tp.first || t->partitions() == nullptr) continue;
            for (const auto* p : *t->partitions()) {
              if (p->partition() != b.tp.second) continue;
              if (p->error() == wire::ErrorCode::NONE) {
                err.reset();
                d.offset = p->base_offset();
                d.timestamp_ms = p->log_append_time_ms();
                d.fsynced = p->durability() == wire::Durability::fsynced;
                if (p->duplicates() != nullptr) {
                  for (const auto* dup : *p->duplicates()) dropped[dup->index()] = dup->offset();
                }
              } else {
                err = client::make_error(p->error(), p->message());
              }
            }
          }
        }
      }
      if (!err) {
        if (idempotent) {
          std::lock_guard lock(mu);
          forget_locked(b);
        }
        complete(b.callbacks, b.reserved, d, true, dropped);
        continue;
      }
      const bool sequence_error =
          idempotent && (err->code == errc::out_of_order_sequence || err->code == errc::unknown_producer_id);
      if (sequence_error && now >= b.deadline) {
        // Refused because an older batch did not land (or the partition
        // forgot us), and out of time to go again in a new epoch: the
        // batch was not written and its time is up. That is a timeout,
        // with the batch's own last error if it had one; the sequence
        // error is the producer's bookkeeping, not the cause.
        {
          std::lock_guard lock(mu);
          forget_locked(b);
        }
        complete(b.callbacks, b.reserved, std::unexpected(expiry_error(b)), false);
        continue;
      }
      if (sequence_error) {
        bool exhausted = false;
        {
          std::lock_guard lock(mu);
          recovering.insert(b.tp);
          // Behind an older batch that did not land yet: the same bytes
          // again after it. Otherwise a real gap (or a forgotten producer):
          // a new epoch.
          if (err->code == errc::unknown_producer_id || !predecessor_pending_locked(b)) {
            exhausted = producer_epoch == INT16_MAX && b.epoch == producer_epoch;
            if (exhausted) {
              forget_locked(b);
            } else {
              restart_sequences_locked(b);
            }
          }
        }
        if (exhausted) {
          complete(b.callbacks, b.reserved, std::unexpected(error{errc::producer_fenced, "producer epoch exhausted"}), false);
          continue;
        }
        // Not the batch's own error: if its time runs out, it reports
        // what went wrong with it before (expiry_error).
        ++b.attempts;
        retries.push_back(std::move(b));
        continue;
      }
      // The leader moved, the broker is gone, or the topic is not (yet)
      // known where we sent it: look the leader up again, then retry.
      const bool stale = client::leader_may_have_moved(err->code) || err->code == errc::unknown_topic_or_partition;
      if (stale) stale_topics.insert(b.tp.first);
      b.failed_on = stale ? broker : -1;
      if ((retriable(err->code) || stale) && now < b.deadline) {
        ++b.attempts;
        auto backoff = std::min<std::chrono::milliseconds>(cfg.retry_backoff * (1 << std::min(b.attempts, 10)),
                                                           cfg.retry_backoff_max);
        std::uniform_real_distribution<double> jitter(0.8, 1.2);
        b.retry_at =
            now + std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(backoff.count()) * jitter(io_rng)));
        b.last_error = *err;
        if (idempotent) {
          std::lock_guard lock(mu);
          recovering.insert(b.tp);  // its newer batches in flight come back first
        }
        retries.push_back(std::move(b));
        continue;
      }
      if (idempotent) {
        std::lock_guard lock(mu);
        forget_locked(b);
      }
      complete(b.callbacks, b.reserved, std::unexpected(*err), false);
    }
    {
      std::lock_guard lock(mu);
      // Ahead of everything newer of their partition, in seal order.
      for (auto& b : retries) requeue_locked(std::move(b));
      for (const auto& b : batches) {
        if (in_flight_of(b.tp) == 0) recovering.erase(b.tp);
      }
    }
    if (!retries.empty()) wake();  // their retry time comes on a tick
    for (const auto& topic : stale_topics) refresh_metadata(topic);
    drain();
  }

  asio::awaitable<void> tick_loop() {
    // A quarter of the linger (at least 200 µs): a batch leaves at most
    // linger + linger/4 after its first record.
    const auto period = std::max<std::chrono::microseconds>(std::chrono::microseconds(200),
                                                            std::chrono::duration_cast<std::chrono::microseconds>(cfg.linger) / 4);
    while (ticking) {
      // Nothing buffered or waiting: park instead of waking 4000 times a
      // second; enqueue() unparks (wake()).
      bool nothing_buffered = false;
      {
        std::lock_guard lock(mu);
        nothing_buffered = ready.empty() && std::all_of(accumulators.begin(), accumulators.end(),
                                            [](const auto& kv) { return kv.second.builder.empty(); });
      }
      parked = nothing_buffered && in_flight == 0;
      if (parked) {
        ticker->expires_at(asio::steady_timer::time_point::max());
      } else {
        ticker->expires_after(period);
      }
      co_await ticker->async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      parked = false;
      if (!ticking) co_return;
      drain();
    }
  }

  // I/O thread: ends a parked tick loop's sleep.
  void wake() {
    if (parked && ticker) ticker->cancel();
  }

  void enqueue(std::string_view topic, std::optional<std::int32_t> partition, std::optional<std::string_view> key,
               std::string_view value, const std::vector<header>& headers, callback cb) {
    // User callbacks and partitioners never run under `mu`.
    auto fail = [&](error e) {
      if (cb) cb(std::unexpected(std::move(e)));
    };
    {
      std::lock_guard lock(mu);
      if (closed) return fail(error{errc::closed, "producer closed"});
    }
    auto count = meta->partitions(std::string(topic), cfg.max_block);  // a new topic: bounded like buffer.memory
    if (!count) return fail(count.error());
    std::optional<std::int32_t> p = partition;
    if (!p && cfg.partitioner) p = cfg.partitioner(topic, key, *count);
    if (!p && key) p = schemas::partition_for_key(bytes_of(*key), *count);
    if (p && (*p < 0 || *p >= *count)) {
      return fail(error{errc::unknown_topic_or_partition, "partition " + std::to_string(*p) + " of " + std::string(topic)});
    }
    std::vector<schemas::header_in> hs;
    for (const auto& h : headers) hs.push_back({h.key, bytes_of(h.value)});
    // A message id from the user's function, unless the record has one.
    std::optional<std::string> derived_id;
    if (cfg.msg_id_of && std::none_of(headers.begin(), headers.end(), [](const header& h) { return h.key == msg_id_header; })) {
      derived_id = cfg.msg_id_of(topic, key, value);
      if (derived_id) hs.push_back({msg_id_header, bytes_of(*derived_id)});
    }
    bool kick = cfg.linger.count() == 0;
    bool first_record = false;  // the batch is new: a parked tick loop must wake
    std::size_t need = value.size() + (key ? key->size() : 0) + 64;
    for (const auto& h : hs) need += h.key.size() + h.value.size();
    if (need > cfg.buffer_memory) {
      return fail(error{errc::invalid_argument, "a record of " + std::to_string(need) + " bytes is larger than buffer.memory (" +
                                                    std::to_string(cfg.buffer_memory) + ")"});
    }
    {
      std::unique_lock lock(mu);
      // buffer.memory: wait for space, bounded by max.block.ms; never on
      // the I/O thread, which is what makes space.
      const auto until = clock_type::now() + cfg.max_block;
      while (!closed && buffered + need > cfg.buffer_memory) {
        if (pool->on_io_thread() || space.wait_until(lock, until) == std::cv_status::timeout) {
          if (closed || buffered + need <= cfg.buffer_memory) break;
          lock.unlock();
          return fail(error{errc::timed_out, "buffer.memory (" + std::to_string(cfg.buffer_memory) +
                                                 " bytes) stayed full for max.block.ms: records are not delivered as fast "
                                                 "as they are sent"});
        }
      }
      if (closed) {
        lock.unlock();
        return fail(error{errc::closed, "producer closed"});
      }
      buffered += need;
      if (!p) {  // no key: stick to one partition until its batch is sealed or due
        auto it = sticky.find(topic);
        if (it == sticky.end()) it = sticky.emplace(std::string(topic), pick_sticky_locked(topic, *count)).first;
        p = it->second;
      }
      tp_key tp{std::string(topic), *p};
      auto& a = accumulators[tp];
      const auto now = clock_type::now();
      if (a.builder.empty()) {
        a.first = now;
        first_record = true;
        next_due = std::min(next_due, now + cfg.linger);
      }
      if (now >= next_due) {
        next_due = clock_type::time_point::max();  // one kick; drain() sets the next
        kick = true;
      }
      std::optional<std::span<const std::byte>> k;
      if (key) k = bytes_of(*key);
      a.builder.add(k, bytes_of(value), timestamp_ms(wall_ms()), hs);
      a.callbacks.push_back(std::move(cb));
      a.reserved += need;
      ++outstanding;
      if (a.builder.size_estimate() >= cfg.batch_bytes) {
        seal_locked(tp, a);
        kick = true;
      }
    }
    if (kick || first_record) {
      asio::post(pool->io(), [this, kick] {
        wake();  // a parked tick loop resumes: lingering and retries need it
        if (kick) drain();
      });
    }
  }

  // After the I/O thread is gone: whatever was never sent fails with `closed`.
  ~impl() {
    dying = true;
    pool.reset();  // joins the I/O thread; requests still in flight fail into `ready` or their callbacks
    std::vector<callback> left;
    for (auto& [tp, a] : accumulators) std::move(a.callbacks.begin(), a.callbacks.end(), std::back_inserter(left));
    for (auto& b : ready) std::move(b.callbacks.begin(), b.callbacks.end(), std::back_inserter(left));
    for (auto& cb : left) {
      if (cb) cb(std::unexpected(error{errc::closed, "producer closed before delivery"}));
    }
  }
  impl() = default;
  impl(const impl&) = delete;             // owns the I/O thread
  impl& operator=(const impl&) = delete;  // owns the I/O thread
  impl(impl&&) = delete;                  // the I/O thread holds `this`
  impl& operator=(impl&&) = delete;       // the I/O thread holds `this`
};

producer::producer(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

producer::~producer() { close(); }

result<std::unique_ptr<producer>> producer::connect(producer_config cfg) {
  auto bootstrap = client::resolve_bootstrap(cfg.bootstrap, cfg.request_timeout);
  if (!bootstrap) return std::unexpected(bootstrap.error());
  if (cfg.acks != 0 && cfg.acks != 1 && cfg.acks != -1) {
    return std::unexpected(error{errc::invalid_argument, "acks must be 0, 1 or -1 (all)"});
  }
  if (cfg.enable_idempotence.value_or(false) && cfg.acks != -1) {
    return std::unexpected(error{errc::invalid_argument, "enable_idempotence needs acks = -1 (all)"});
  }
  if (cfg.max_in_flight_per_partition < 1 || cfg.max_in_flight_per_partition > 5) {
    return std::unexpected(error{errc::invalid_argument, "max_in_flight_per_partition must be 1 to 5"});
  }
  auto i = std::make_unique<impl>();
  i->cfg = cfg;
  i->pool = std::make_unique<client::connection_pool>(std::move(*bootstrap), cfg.client_id, cfg.request_timeout);
  i->meta = std::make_unique<client::metadata_cache>(*i->pool);
  auto any = i->pool->any();
  if (!any) return std::unexpected(any.error());
  if (cfg.enable_idempotence.value_or(cfg.acks == -1)) {
    auto id = client::init_producer_id(**any);
    if (!id) return std::unexpected(id.error());
    i->idempotent = true;
    i->producer_id = id->first;
    i->producer_epoch = id->second;
  }
  i->ticker = std::make_unique<asio::steady_timer>(i->pool->io());
  asio::co_spawn(i->pool->io(), i->tick_loop(), asio::detached);
  return std::unique_ptr<producer>(new producer(std::move(i)));
}

void producer::send(std::string_view topic, std::optional<std::string_view> key, std::string_view value,
                    const std::vector<header>& headers, callback cb) {
  impl_->enqueue(topic, std::nullopt, key, value, headers, std::move(cb));
}

namespace {

// A callback that fulfils the returned future (the send overloads without one).
std::pair<producer::callback, std::future<result<delivery>>> future_callback() {
  auto p = std::make_shared<std::promise<result<delivery>>>();
  auto f = p->get_future();
  return {[p](const result<delivery>& r) { p->set_value(r); }, std::move(f)};
}

}  // namespace

std::future<result<delivery>> producer::send(std::string_view topic, std::optional<std::string_view> key,
                                             std::string_view value, const std::vector<header>& headers) {
  auto [cb, f] = future_callback();
  impl_->enqueue(topic, std::nullopt, key, value, headers, std::move(cb));
  return std::move(f);
}

void producer::send_to(std::string_view topic, std::int32_t partition, std::optional<std::string_view> key,
                       std::string_view value, const std::vector<header>& headers, callback cb) {
  impl_->enqueue(topic, partition, key, value, headers, std::move(cb));
}

std::future<result<delivery>> producer::send_to(std::string_view topic, std::int32_t partition,
                                                std::optional<std::string_view> key, std::string_view value,
                                                const std::vector<header>& headers) {
  auto [cb, f] = future_callback();
  impl_->enqueue(topic, partition, key, value, headers, std::move(cb));
  return std::move(f);
}

std::future<result<delivery>> producer::send_with_id(std::string_view topic, std::optional<std::string_view> key,
                                                     std::string_view value, std::string_view msg_id,
                                                     std::vector<header> headers) {
  headers.push_back(header{std::string(msg_id_header), std::string(msg_id)});
  return send(topic, key, value, headers);
}

result<void> producer::flush(std::chrono::milliseconds timeout) {
  auto& i = *impl_;
  {
    std::lock_guard lock(i.mu);
    i.flushing = true;
  }
  asio::post(i.pool->io(), [&i] { i.drain(); });
  std::unique_lock lock(i.mu);
  const bool done = i.idle.wait_for(lock, timeout, [&] { return i.outstanding == 0; });
  i.flushing = false;
  if (!done) return std::unexpected(error{errc::timed_out, std::to_string(i.outstanding) + " records still undelivered"});
  return {};
}

void producer::close() {
  if (!impl_ || !impl_->ticker) return;
  auto& i = *impl_;
  {
    std::lock_guard lock(i.mu);
    if (i.closed) return;
    i.closed = true;  // later sends fail at once; what is buffered still goes
  }
  i.space.notify_all();  // a send() waiting for buffer.memory fails with `closed`
  (void)flush(i.cfg.delivery_timeout);
  std::promise<void> stopped;
  asio::post(i.pool->io(), [&i, &stopped] {
    i.ticking = false;
    i.ticker.reset();  // on its own thread: the pending wait ends, the loop returns
    stopped.set_value();
  });
  stopped.get_future().wait();
}

}  // namespace runnel
