#include "client/src/committer.h"

#include <future>

#include "client/src/group_requests.h"

namespace runnel::client {

namespace {
constexpr std::chrono::milliseconds max_backoff{500};
constexpr std::chrono::milliseconds stale_epoch_backoff{100};
constexpr int max_stale_retries = 3;
}  // namespace

committer::committer(connection_pool& pool, std::string group, identity who, std::size_t max_in_flight)
    : pool_(pool), group_(std::move(group)), who_(std::move(who)), max_in_flight_(std::max<std::size_t>(1, max_in_flight)) {
  thread_ = std::thread([this] { run(); });
}

committer::~committer() { finish(); }

void committer::commit(offsets o, outcome done) {
  std::lock_guard lock(mu_);
  if (stopping_) {
    done(std::unexpected(error{errc::closed, "the consumer is closed"}));
    return;
  }
  if (o.empty()) {
    done(result<void>{});
    return;
  }
  auto j = std::make_unique<job>();
  j->seq = next_seq_++;
  for (const auto& [tp, v] : o) newest_[tp] = j->seq;
  j->pending = std::move(o);
  j->done = std::move(done);
  j->deadline = clock_type::now() + pool_.timeout();
  queue_.push_back(std::move(j));
  pump();
  wake_thread();
}

result<void> committer::commit_sync(offsets o) {
  if (pool_.on_io_thread()) {
    return std::unexpected(error{errc::invalid_argument, "commit_sync from the client's I/O thread (a callback)"});
  }
  std::promise<result<void>> p;
  auto f = p.get_future();
  commit(std::move(o), [&p](const result<void>& r) { p.set_value(r); });
  return f.get();
}

void committer::finish() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void committer::run() {
  std::unique_lock lock(mu_);
  while (true) {
    pump();
    if (stopping_ && queue_.empty() && sent_.empty()) return;
    if (queue_.empty() || sent_.size() >= max_in_flight_) {
      cv_.wait(lock);
      continue;
    }
    const auto not_before = queue_.front()->not_before;
    if (not_before > clock_type::now()) {
      cv_.wait_until(lock, not_before);
      continue;
    }
    if (pool_.coordinator_of(group_)) {
      // Known again since pump() looked (another thread found it).
      cv_.wait_for(lock, std::chrono::milliseconds(10));
      continue;
    }
    lock.unlock();
    auto where = find_coordinator(pool_, group_);
    lock.lock();
    if (where) {
      pool_.set_coordinator(group_, *where);
      continue;
    }
    if (queue_.empty()) continue;
    // Every queued commit waits for the coordinator; the head gives up at
    // its deadline, or at once on an error no retry mends.
    auto j = std::move(queue_.front());
    queue_.pop_front();
    if (!coordinator_moved(where.error().code)) {
      settle(*j, std::unexpected(where.error()));
      continue;
    }
    const auto backoff = std::exchange(j->backoff, std::min(j->backoff * 2, max_backoff));
    retry(std::move(j), where.error(), backoff);
  }
}

void committer::pump() {
  const auto now = clock_type::now();
  while (!queue_.empty() && sent_.size() < max_in_flight_) {
    if (queue_.front()->not_before > now) return;  // the thread waits it out
    auto where = pool_.coordinator_of(group_);
    if (!where) return;  // the thread looks it up
    auto j = std::move(queue_.front());
    queue_.pop_front();
    auto who = who_();
    if (!who) {
      settle(*j, std::unexpected(who.error()));
      continue;
    }
    flatbuffers::FlatBufferBuilder fbb;
    auto [body, type] = build_commit_request(fbb, group_, who->first, who->second, j->pending);
    const std::uint64_t seq = j->seq;
    sent_.emplace(seq, std::move(j));
    // call() only posts: the answer never runs inside it, under this lock.
    pool_.at(*where).call(std::move(fbb), type, body, {},
                          [this, seq](result<response> r) { answered(seq, std::move(r)); });
  }
}

void committer::answered(std::uint64_t seq, result<response> r) {
  std::lock_guard lock(mu_);
  auto node = sent_.extract(seq);
  std::unique_ptr<job> j = std::move(node.mapped());
  std::optional<error> failed = request_error(r);
  if (!failed) failed = commit_moved_error(*r);  // the whole request was refused
  if (failed && coordinator_moved(failed->code)) {
    pool_.set_coordinator(group_, std::nullopt);  // look it up again
    const auto backoff = std::exchange(j->backoff, std::min(j->backoff * 2, max_backoff));
    retry(std::move(j), *failed, backoff);
  } else if (failed) {
    settle(*j, std::unexpected(*failed));
  } else if (auto parts = parse_commit_response(*r); !parts) {
    settle(*j, std::unexpected(parts.error()));
  } else {
    // The member's epoch moved while the commit travelled: again with the
    // new one. Any other refusal fails the commit.
    offsets again;
    std::optional<error> stale;
    std::optional<error> first;
    for (const auto& [tp, e] : *parts) {
      if (!e) continue;
      if (e->code == errc::stale_member_epoch && j->stale_retries < max_stale_retries) {
        if (auto it = j->pending.find(tp); it != j->pending.end()) again.insert(*it);
        stale = e;
      } else if (!first) {
        first = error{e->code, tp.topic + "/" + std::to_string(tp.partition) + ": " + e->message};
      }
    }
    if (first || again.empty()) {
      settle(*j, first ? result<void>(std::unexpected(*first)) : result<void>{});
    } else {
      for (const auto& [tp, v] : j->pending) {
        if (auto it = newest_.find(tp); !again.contains(tp) && it != newest_.end() && it->second == j->seq) newest_.erase(it);
      }
      j->pending = std::move(again);
      ++j->stale_retries;
      retry(std::move(j), *stale, stale_epoch_backoff);
    }
  }
  pump();
  wake_thread();
}

void committer::wake_thread() {
  // Only when it has work (pump() stopped for a backoff or an unknown
  // coordinator): a wake-up per commit would cost a context switch.
  if (stopping_ || (!queue_.empty() && sent_.size() < max_in_flight_)) cv_.notify_all();
}

void committer::settle(job& j, const result<void>& r) {
  for (const auto& [tp, v] : j.pending) {
    if (auto it = newest_.find(tp); it != newest_.end() && it->second == j.seq) newest_.erase(it);
  }
  if (j.done) j.done(r);
}

void committer::retry(std::unique_ptr<job> j, const error& why, std::chrono::milliseconds backoff) {
  const auto now = clock_type::now();
  // A later commit carries a newer offset of these: sending them again
  // after it would move the group back, so they are left out.
  std::erase_if(j->pending, [&](const auto& kv) {
    auto n = newest_.find(kv.first);
    return n == newest_.end() || n->second != j->seq;
  });
  if (j->pending.empty() || now + backoff >= j->deadline) {
    settle(*j, std::unexpected(why));  // did not land as asked (a later commit may have)
    return;
  }
  j->not_before = now + backoff;
  queue_.push_front(std::move(j));
}

}  // namespace runnel::client
