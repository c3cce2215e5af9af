#include "runnel/share_processor.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <random>

#include "client/src/retry.h"
#include "runnel/admin.h"

namespace runnel {

namespace {

using clock_type = std::chrono::steady_clock;

// A failed record kept locked until its backoff is over, then released.
struct held_record {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;

  [[nodiscard]] record_view view() const {
    record_view v;
    v.topic = topic;
    v.partition = partition;
    v.offset = offset;
    return v;
  }
};

constexpr std::chrono::milliseconds default_lock{30'000};  // share.record.lock.duration.ms's default

}  // namespace

struct share_processor::impl {
  share_processor_config cfg;
  std::unique_ptr<share_consumer> cons;
  std::chrono::milliseconds max_hold{default_lock / 2};
  std::multimap<clock_type::time_point, held_record> held;  // by release time
  std::mt19937 rng{std::random_device{}()};
  std::atomic<bool> stopping{false};

  mutable std::mutex stats_mu;
  share_processor_stats counts;

  void count(std::int64_t share_processor_stats::*field, std::int64_t n = 1) {
    std::lock_guard lk(stats_mu);
    counts.*field += n;
  }

  // The handler's answer as the record's acknowledgement.
  result<void> handle(const handler& h, const record_view& r) {
    auto res = client::call_handler(h, r);
    if (res.status == process_status::done) {
      count(&share_processor_stats::done);
      return cons->acknowledge(r, acknowledge_type::accept);
    }
    if (res.status == process_status::dead || r.delivery_count >= cfg.retry.max_attempts) {
      count(&share_processor_stats::rejected);
      return cons->acknowledge(r, acknowledge_type::reject);
    }
    const auto wait = std::min(client::retry_backoff(cfg.retry, std::max(1, r.delivery_count), rng), max_hold);
    held.emplace(clock_type::now() + wait, held_record{std::string(r.topic), r.partition, r.offset});
    return {};
  }

  // Releases the records whose backoff is over (all of them: `until` max).
  result<void> release_due(clock_type::time_point until) {
    while (!held.empty() && held.begin()->first <= until) {
      auto r = cons->acknowledge(held.begin()->second.view(), acknowledge_type::release);
      held.erase(held.begin());
      if (!r) return r;
      count(&share_processor_stats::released);
    }
    return {};
  }

  void count_acknowledgement_errors() {
    if (auto e = cons->take_acknowledgement_errors(); !e.empty()) {
      count(&share_processor_stats::acknowledgement_errors, static_cast<std::int64_t>(e.size()));
    }
  }
};

share_processor::share_processor(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
share_processor::~share_processor() = default;

result<std::unique_ptr<share_processor>> share_processor::connect(share_processor_config cfg) {
  if (cfg.consumer.group_id.empty()) {
    return std::unexpected(error{errc::invalid_argument, "a share processor needs a group id"});
  }
  if (cfg.topics.empty()) return std::unexpected(error{errc::invalid_argument, "a share processor needs topics"});
  if (auto ok = client::check_retry_policy(cfg.retry); !ok) return std::unexpected(ok.error());
  auto i = std::make_unique<impl>();
  i->cfg = std::move(cfg);
  i->cfg.consumer.explicit_acknowledgement = true;
  auto c = share_consumer::connect(i->cfg.consumer);
  if (!c) return std::unexpected(c.error());
  i->cons = std::move(*c);
  if (auto s = i->cons->subscribe(i->cfg.topics); !s) return std::unexpected(s.error());
  // The group exists now: its lock duration bounds how long a failed
  // record may be held before its release.
  admin_config ac;
  ac.bootstrap = i->cfg.consumer.bootstrap;
  ac.client_id = i->cfg.consumer.client_id + "-admin";
  ac.timeout = i->cfg.consumer.request_timeout;
  auto a = admin::connect(ac);
  if (!a) return std::unexpected(a.error());
  auto configs = (*a)->describe_group_configs(i->cfg.consumer.group_id);
  if (!configs) return std::unexpected(configs.error());
  if (auto l = configs->find("share.record.lock.duration.ms"); l != configs->end()) {
    i->max_hold = std::chrono::milliseconds(std::stoll(l->second.value) / 2);
  }
  return std::unique_ptr<share_processor>(new share_processor(std::move(i)));
}

result<void> share_processor::run(const handler& h) {
  auto& i = *impl_;
  using namespace std::chrono_literals;
  std::optional<error> fatal;
  while (!i.stopping.load()) {
    if (auto r = i.release_due(clock_type::now()); !r) {
      fatal = r.error();
      break;
    }
    // Wait no longer than the next release.
    const auto next = i.held.empty() ? clock_type::now() + 100ms : i.held.begin()->first;
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::clamp<clock_type::duration>(next - clock_type::now(), 0ms, 100ms));
    auto records = i.cons->poll(wait);
    i.count_acknowledgement_errors();
    if (!records) {
      if (retriable(records.error().code)) continue;
      fatal = records.error();
      break;
    }
    for (const auto& r : *records) {
      if (auto a = i.handle(h, r); !a) {
        fatal = a.error();
        break;
      }
    }
    if (fatal) break;
  }
  // Whatever waits for its backoff goes to the next member now.
  auto released = i.release_due(clock_type::time_point::max());
  auto sent = i.cons->commit_sync();
  i.count_acknowledgement_errors();
  auto closed = i.cons->close();
  if (fatal) return std::unexpected(*fatal);
  if (!released) return released;
  if (!sent && !retriable(sent.error().code) && sent.error().code != make_error_code(errc::invalid_record_state)) {
    return sent;
  }
  return closed;
}

void share_processor::stop() { impl_->stopping.store(true); }

share_processor_stats share_processor::stats() const {
  std::lock_guard lk(impl_->stats_mu);
  return impl_->counts;
}

}  // namespace runnel
