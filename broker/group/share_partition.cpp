#include "broker/group/share_partition.h"

#include <fmt/format.h>

#include <algorithm>

namespace runnel::group {

std::string_view state_name(share_record_state s) {
  switch (s) {
    case share_record_state::available: return "available";
    case share_record_state::acquired: return "acquired";
    case share_record_state::acknowledged: return "acknowledged";
    case share_record_state::archived: return "archived";
    case share_record_state::dead_lettering: return "dead_lettering";
  }
  return "unknown";
}

share_partition::share_partition(offset start, const share_limits& limits)
    : limits_(limits), start_(start), end_(start) {}

std::optional<share_partition> share_partition::from_state(const share_state& s, const share_limits& limits) {
  if (s.end < s.start) return std::nullopt;
  share_partition p(s.start, limits);
  p.end_ = s.end;
  offset next = s.start;  // the lowest offset the next run may begin at
  for (const auto& run : s.runs) {
    if (run.first < next || run.last < run.first || run.last >= s.end) return std::nullopt;
    switch (run.state) {
      case share_record_state::available:
      case share_record_state::acknowledged:
      case share_record_state::archived:
      case share_record_state::dead_lettering: break;
      case share_record_state::acquired: return std::nullopt;  // never persisted
      default: return std::nullopt;
    }
    for (offset o = run.first; o <= run.last; o += 1) {
      p.flight_.push_back(flight_record{o, {}, {}, no_member, run.delivery_count, run.state});
    }
    next = run.last + 1;
  }
  p.advance();
  return p;
}

offset share_partition::next_read() const {
  for (const auto& r : flight_) {
    if (r.state == share_record_state::available) return r.at;
  }
  return end_;
}

template <typename Deque>
auto share_partition::lower_bound(Deque& flight, offset at) {
  return std::lower_bound(flight.begin(), flight.end(), at, [](const flight_record& r, offset o) { return r.at < o; });
}

std::uint32_t share_partition::intern(std::string_view member) {
  if (auto it = ids_.find(member); it != ids_.end()) return it->second;
  std::uint32_t i = 0;
  while (i < names_.size() && !names_[i].id.empty()) ++i;
  if (i == names_.size()) names_.emplace_back();
  names_[i].id = std::string(member);
  names_[i].held = 0;
  ids_.emplace(names_[i].id, i);
  return i;
}

void share_partition::unhold(std::uint32_t member) {
  --names_[member].held;
  forget_if_idle(member);
}

void share_partition::forget_if_idle(std::uint32_t member) {
  auto& h = names_[member];
  if (h.held > 0) return;
  ids_.erase(h.id);
  h.id.clear();
}

void share_partition::take(flight_record& r, std::uint32_t member, clock_type::time_point now,
                           std::vector<acquired_range>& out) {
  r.state = share_record_state::acquired;
  r.member = member;
  r.acquired_at = now;
  r.deadline = now + limits_.lock_duration;
  ++r.delivery_count;
  ++names_[member].held;
  if (!out.empty() && out.back().last + 1 == r.at && out.back().delivery_count == r.delivery_count) {
    out.back().last = r.at;
  } else {
    out.push_back(acquired_range{r.at, r.at, r.delivery_count});
  }
}

std::vector<acquired_range> share_partition::acquire(std::string_view member, std::size_t max_records,
                                                     std::span<const offset_range> records, offset read_until,
                                                     clock_type::time_point now) {
  std::vector<acquired_range> out;
  if (max_records == 0 || member.empty()) return out;
  const std::uint32_t m = intern(member);
  std::size_t taken = 0;
  // Redeliveries first: they are the lowest offsets.
  for (auto& r : flight_) {
    if (taken == max_records || r.at >= read_until) break;
    if (r.state != share_record_state::available) continue;
    take(r, m, now, out);
    ++taken;
  }
  for (const auto& range : records) {
    for (offset o = std::max(range.first, end_); o <= range.last && o < read_until; o += 1) {
      if (taken == max_records || flight_.size() >= limits_.max_record_locks) break;
      flight_.push_back(flight_record{o, {}, {}, no_member, 0, share_record_state::available});
      end_ = o + 1;
      take(flight_.back(), m, now, out);
      ++taken;
    }
  }
  forget_if_idle(m);
  return out;
}

std::optional<error> share_partition::acknowledge(std::string_view member, offset first, offset last, ack_kind kind,
                                                  clock_type::time_point now) {
  auto refuse = [&](std::string why) {
    return error(make_error_code(errc::invalid_record_state),
                 fmt::format("cannot acknowledge offsets {}..{}: {}", first.value(), last.value(), why));
  };
  if (last < first) return refuse("the range is empty");
  if (first < start_) return refuse(fmt::format("offset {} is done already", first.value()));
  if (last >= end_) return refuse(fmt::format("offset {} was never handed out", last.value()));
  const auto it = ids_.find(member);
  const auto lo = lower_bound(flight_, first);
  const auto hi = std::upper_bound(lo, flight_.end(), last, [](offset o, const flight_record& r) { return o < r.at; });
  // Check every record before changing any.
  for (auto r = lo; r != hi; ++r) {
    if (r->state != share_record_state::acquired) {
      return refuse(fmt::format("offset {} is {}, not acquired", r->at.value(), state_name(r->state)));
    }
    if (it == ids_.end() || r->member != it->second) {
      return refuse(fmt::format("offset {} is acquired by another member", r->at.value()));
    }
    if (r->deadline <= now) return refuse(fmt::format("the lock on offset {} has expired", r->at.value()));
  }
  for (auto r = lo; r != hi; ++r) {
    const std::uint32_t m = r->member;
    switch (kind) {
      case ack_kind::accept:
        r->state = share_record_state::acknowledged;
        r->member = no_member;
        break;
      case ack_kind::release: give_back(*r); break;
      case ack_kind::reject: archive(*r); break;
    }
    unhold(m);
  }
  advance();
  return std::nullopt;
}

void share_partition::give_back(flight_record& r) {
  r.member = no_member;
  if (r.delivery_count >= limits_.max_delivery_attempts) {
    archive(r);
  } else {
    r.state = share_record_state::available;
  }
}

void share_partition::archive(flight_record& r) {
  r.member = no_member;
  r.state = limits_.dead_letter ? share_record_state::dead_lettering : share_record_state::archived;
}

std::size_t share_partition::expire_locks(clock_type::time_point now) {
  std::size_t n = 0;
  for (auto& r : flight_) {
    if (r.state != share_record_state::acquired || r.deadline > now) continue;
    const std::uint32_t m = r.member;
    give_back(r);
    unhold(m);
    ++n;
  }
  if (n > 0) advance();
  return n;
}

std::optional<clock_type::time_point> share_partition::next_lock_deadline() const {
  std::optional<clock_type::time_point> out;
  for (const auto& r : flight_) {
    if (r.state == share_record_state::acquired && (!out || r.deadline < *out)) out = r.deadline;
  }
  return out;
}

std::size_t share_partition::release_member(std::string_view member) {
  const auto it = ids_.find(member);
  if (it == ids_.end()) return 0;
  const std::uint32_t m = it->second;
  std::size_t n = 0;
  for (auto& r : flight_) {
    if (r.state != share_record_state::acquired || r.member != m) continue;
    give_back(r);
    unhold(m);
    ++n;
  }
  if (n > 0) advance();
  return n;
}

std::vector<std::string> share_partition::holders() const {
  std::vector<std::string> out;
  out.reserve(ids_.size());
  for (const auto& [id, index] : ids_) out.push_back(id);
  return out;
}

std::vector<std::pair<offset, std::uint16_t>> share_partition::dead_letters() const {
  std::vector<std::pair<offset, std::uint16_t>> out;
  for (const auto& r : flight_) {
    if (r.state == share_record_state::dead_lettering) out.emplace_back(r.at, r.delivery_count);
  }
  return out;
}

bool share_partition::dead_lettered(offset at) {
  const auto it = lower_bound(flight_, at);
  if (it == flight_.end() || it->at != at || it->state != share_record_state::dead_lettering) return false;
  it->state = share_record_state::archived;
  advance();
  return true;
}

void share_partition::move_start(offset log_start) {
  if (log_start <= start_) return;
  while (!flight_.empty() && flight_.front().at < log_start) {
    if (flight_.front().state == share_record_state::acquired) unhold(flight_.front().member);
    flight_.pop_front();
  }
  end_ = std::max(end_, log_start);
  start_ = log_start;
  advance();
}

void share_partition::advance() {
  while (!flight_.empty() && (flight_.front().state == share_record_state::acknowledged ||
                              flight_.front().state == share_record_state::archived)) {
    flight_.pop_front();
  }
  start_ = flight_.empty() ? end_ : flight_.front().at;
}

share_state share_partition::state() const {
  share_state s{start_, end_, {}};
  for (const auto& r : flight_) {
    const auto st = r.state == share_record_state::acquired ? share_record_state::available : r.state;
    if (!s.runs.empty() && s.runs.back().last + 1 == r.at && s.runs.back().state == st &&
        s.runs.back().delivery_count == r.delivery_count) {
      s.runs.back().last = r.at;
    } else {
      s.runs.push_back(share_state_run{r.at, r.at, st, r.delivery_count});
    }
  }
  return s;
}

share_stats share_partition::stats(clock_type::time_point now) const {
  share_stats s;
  s.start = start_;
  s.end = end_;
  for (const auto& r : flight_) {
    switch (r.state) {
      case share_record_state::available: ++s.available; break;
      case share_record_state::acquired:
        ++s.acquired;
        s.oldest_lock_age =
            std::max(s.oldest_lock_age, std::chrono::duration_cast<std::chrono::milliseconds>(now - r.acquired_at));
        break;
      case share_record_state::acknowledged: ++s.acknowledged; break;
      case share_record_state::dead_lettering:
        ++s.dead_lettering;
        ++s.archived;
        break;
      case share_record_state::archived: ++s.archived; break;
    }
  }
  return s;
}

std::optional<std::pair<share_record_state, std::uint16_t>> share_partition::record(offset at) const {
  const auto it = lower_bound(flight_, at);
  if (it == flight_.end() || it->at != at) return std::nullopt;
  return std::pair{it->state, it->delivery_count};
}

}  // namespace runnel::group
