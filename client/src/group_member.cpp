#include "client/src/group_member.h"

#include <algorithm>
#include <map>

#include "client/src/group_requests.h"
#include "client/src/wire_client.h"

namespace runnel::client {

namespace {

using clock_type = std::chrono::steady_clock;
constexpr auto idle = std::chrono::hours(1);
constexpr auto max_backoff = std::chrono::milliseconds(1'000);
constexpr auto unreleased_retry = std::chrono::milliseconds(500);

struct heartbeat_args {
  std::string member_id;
  std::int32_t epoch = 0;
  std::vector<std::string> topics;
  std::string regex;
  std::set<topic_partition_ref> owned;
};

result<response> send_heartbeat(wire_client& w, const group_member_config& cfg, const heartbeat_args& a) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<flatbuffers::String>> names;
  for (const auto& t : a.topics) names.push_back(fbb.CreateString(t));
  std::map<std::string, std::vector<std::int32_t>> by_topic;
  for (const auto& tp : a.owned) by_topic[tp.topic].push_back(tp.partition);
  std::vector<flatbuffers::Offset<wire::TopicPartitions>> owned;
  for (const auto& [t, ps] : by_topic) owned.push_back(wire::CreateTopicPartitionsDirect(fbb, t.c_str(), &ps));
  const auto session = static_cast<std::int32_t>(cfg.session_timeout.count());
  auto body = wire::CreateConsumerGroupHeartbeatRequestDirect(
      fbb, cfg.group_id.c_str(), a.member_id.empty() ? nullptr : a.member_id.c_str(), a.epoch,
      cfg.instance_id.empty() ? nullptr : cfg.instance_id.c_str(), nullptr,
      static_cast<std::int32_t>(cfg.rebalance_timeout.count()), session < 0 ? -1 : session, &names, a.regex.c_str(),
      cfg.assignor.empty() ? nullptr : cfg.assignor.c_str(), &owned);
  return w.call_sync(std::move(fbb), wire::Request::ConsumerGroupHeartbeatRequest, body.Union());
}

std::set<topic_partition_ref> assignment_of(const wire::ConsumerGroupHeartbeatResponse& r) {
  std::set<topic_partition_ref> out;
  if (r.assignment() == nullptr) return out;
  for (const auto* t : *r.assignment()) {
    if (t->partitions() == nullptr) continue;
    for (std::int32_t p : *t->partitions()) out.insert(topic_partition_ref{t->topic()->str(), p});
  }
  return out;
}

}  // namespace

group_member::group_member(connection_pool& pool, group_member_config cfg, std::function<void()> on_change)
    : pool_(pool), cfg_(std::move(cfg)), on_change_(std::move(on_change)) {
  thread_ = std::thread([this] { run(); });
}

group_member::~group_member() { stop(); }

void group_member::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void group_member::subscribe(std::vector<std::string> topics, std::string regex) {
  {
    std::lock_guard lock(mu_);
    topics_ = std::move(topics);
    regex_ = std::move(regex);
    subscribed_ = true;
    wake_now_ = true;
  }
  wake_.notify_all();
}

group_member::view group_member::snapshot() const {
  std::lock_guard lock(mu_);
  return view{assignment_, losses_, fatal_};
}

void group_member::report_owned(std::set<topic_partition_ref> owned) {
  {
    std::lock_guard lock(mu_);
    if (owned == owned_) return;
    owned_ = std::move(owned);
    wake_now_ = true;
  }
  wake_.notify_all();
}

void group_member::polled() {
  bool rejoin = false;
  {
    std::lock_guard lock(mu_);
    last_poll_ = clock_type::now();
    if (left_for_poll_timeout_) {
      left_for_poll_timeout_ = false;
      wake_now_ = true;
      rejoin = true;
    }
  }
  if (rejoin) wake_.notify_all();
}

std::pair<std::string, std::int32_t> group_member::identity() const {
  std::lock_guard lock(mu_);
  if (member_id_.empty() || epoch_ <= 0) return {member_id_, -1};
  return {member_id_, epoch_};
}

void group_member::leave() {
  stop();
  heartbeat_args a;
  {
    std::lock_guard lock(mu_);
    if (member_id_.empty() || epoch_ <= 0) return;
    a.member_id = member_id_;
    a.epoch = cfg_.instance_id.empty() ? -1 : -2;
    epoch_ = a.epoch;
  }
  auto where = coordinator_ ? result<host_port>(*coordinator_) : find_coordinator(pool_, cfg_.group_id);
  if (where) (void)send_heartbeat(pool_.at(*where), cfg_, a);
}

void group_member::run() {
  auto next = clock_type::now();
  auto backoff = std::chrono::milliseconds(50);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_until(lock, next, [&] { return stopping_ || wake_now_; });
    if (stopping_) break;
    if (!wake_now_ && clock_type::now() < next) continue;
    wake_now_ = false;
    const auto now = clock_type::now();
    if (!subscribed_ || fatal_ || left_for_poll_timeout_) {
      next = now + idle;
      continue;
    }
    heartbeat_args a;
    a.member_id = member_id_;
    a.epoch = epoch_;
    a.topics = topics_;
    a.regex = regex_;
    if (epoch_ > 0) a.owned = owned_;
    bool leaving = false;
    if (epoch_ > 0 && now - last_poll_ > cfg_.max_poll_interval) {
      // The application stopped polling: leave, so its partitions move on.
      leaving = true;
      a.epoch = cfg_.instance_id.empty() ? -1 : -2;
    }
    auto where = coordinator_;
    lock.unlock();
    result<response> r = std::unexpected(error{});
    if (!where) {
      auto found = find_coordinator(pool_, cfg_.group_id);
      if (found) {
        where = *found;
      } else {
        r = std::unexpected(found.error());
      }
    }
    if (where) r = send_heartbeat(pool_.at(*where), cfg_, a);
    lock.lock();
    if (stopping_) break;
    bool changed = false;
    std::optional<error> e = request_error(r);
    const wire::ConsumerGroupHeartbeatResponse* body = nullptr;
    if (!e) {
      body = r->envelope->body_as_ConsumerGroupHeartbeatResponse();
      if (body == nullptr) {
        e = error{errc::bad_response, "ConsumerGroupHeartbeat"};
      } else if (body->error() != wire::ErrorCode::NONE) {
        e = make_error(body->error(), body->message());
      }
    }
    if (leaving) {
      // Whatever the answer, the partitions are gone until the next poll.
      left_for_poll_timeout_ = true;
      epoch_ = 0;
      assignment_.clear();
      ++losses_;
      changed = true;
      next = clock_type::now() + idle;
    } else if (!e) {
      coordinator_ = where;
      backoff = std::chrono::milliseconds(50);
      if (body->member_id() != nullptr) member_id_ = body->member_id()->str();
      auto assignment = assignment_of(*body);
      changed = assignment != assignment_ || body->member_epoch() != epoch_;
      epoch_ = body->member_epoch();
      assignment_ = std::move(assignment);
      next = clock_type::now() + std::chrono::milliseconds(std::max(10, body->heartbeat_interval_ms()));
    } else if (e->code == errc::fenced_member_epoch || e->code == errc::unknown_member_id) {
      // Fenced: the partitions are someone else's now. Join again at once.
      epoch_ = 0;
      if (!assignment_.empty()) changed = true;
      assignment_.clear();
      ++losses_;
      changed = true;
      next = clock_type::now();
    } else if (e->code == errc::unreleased_instance_id) {
      next = clock_type::now() + unreleased_retry;  // the old holder's session must end first
    } else if (coordinator_moved(e->code) || retriable(e->code)) {
      coordinator_.reset();
      next = clock_type::now() + backoff;
      backoff = std::min(backoff * 2, max_backoff);
    } else {
      fatal_ = e;
      changed = true;
    }
    if (changed && on_change_) {
      lock.unlock();
      on_change_();
      lock.lock();
    }
  }
}

}  // namespace runnel::client
