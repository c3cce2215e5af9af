#pragma once
// One partition's state for one share group (KIP-932, ADR 0016): what the
// partition's leader keeps so that many members can consume it at once.
// A pure state machine, no I/O: the caller reads the log, persists state()
// (records.h) before it answers an acknowledgement, and writes the DLQ
// copies that dead_letters() names.
//
//   offsets   [ done ... ) start [ in flight ... ) end [ not handed out ...
//   a record in flight:
//     available --acquire--> acquired (member, lock deadline, delivery count + 1)
//     acquired --accept--> acknowledged
//     acquired --release, lock expiry--> available; archived at the attempt limit
//     acquired --reject--> archived
//     "archived" is dead_lettering first when the group has a DLQ, until
//     dead_lettered() says its copy was acknowledged
//   the start moves past every leading acknowledged or archived record.
//
// Only offsets that are records are held: gaps (compaction, the message-id
// window's dropped offsets) are never acquired and cost nothing.
//
// On the partition's shard; not thread-safe.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/group/errc.h"
#include "broker/group/types.h"
#include "schemas/types.h"

namespace runnel::group {


// What a member says about a record it acquired (Kafka's AcknowledgeType).
enum class ack_kind : std::uint8_t { accept = 1, release = 2, reject = 3 };

struct share_limits {
  std::chrono::milliseconds lock_duration{30'000};  // share.record.lock.duration.ms
  std::uint16_t max_delivery_attempts = 5;          // share.delivery.attempts.max
  std::size_t max_record_locks = 2'000;             // share.partition.max.record.locks
  bool dead_letter = false;                         // the group names a DLQ topic
};

// Offsets first..last (both included).
struct offset_range {
  offset first{0};
  offset last{0};
  auto operator<=>(const offset_range&) const = default;
};

// Records a fetch handed to a member: first..last, all at this delivery count.
struct acquired_range {
  offset first{0};
  offset last{0};
  std::uint16_t delivery_count = 0;
  auto operator<=>(const acquired_range&) const = default;
};

struct share_stats {
  offset start{0};
  offset end{0};
  std::size_t available = 0;
  std::size_t acquired = 0;
  std::size_t acknowledged = 0;  // done, waiting for the records before them
  std::size_t archived = 0;      // the same, archived (dead_lettering included)
  std::size_t dead_lettering = 0;
  std::chrono::milliseconds oldest_lock_age{0};  // 0 when nothing is acquired
};

class share_partition {
 public:
  // Nothing in flight; the first record to hand out is `start`.
  share_partition(offset start, const share_limits& limits);
  // Loaded from its persisted form; nullopt when `s` does not hold
  // together (runs out of order or outside [start, end), unknown states).
  static std::optional<share_partition> from_state(const share_state& s, const share_limits& limits);

  [[nodiscard]] offset start() const { return start_; }
  [[nodiscard]] offset end() const { return end_; }
  [[nodiscard]] std::size_t in_flight() const { return flight_.size(); }
  // Where the caller's next read begins: the lowest available record in
  // flight, else end().
  [[nodiscard]] offset next_read() const;
  void set_limits(const share_limits& limits) { limits_ = limits; }

  // Acquires for `member` up to `max_records` records, in offset order:
  // first the available ones in flight below `read_until`, then new ones
  // from `records` (the offsets that exist in what the caller read, as
  // ascending ranges; those below end() are ignored), while fewer than
  // max_record_locks are in flight. `read_until` is the offset after the
  // last record read: records at or above it were not read and are not
  // handed out.
  std::vector<acquired_range> acquire(std::string_view member, std::size_t max_records,
                                      std::span<const offset_range> records, offset read_until,
                                      clock_type::time_point now);

  // `member` says `kind` for every record in first..last: all or nothing.
  // Refused (invalid_record_state, nothing changed) when a record in the
  // range is not acquired by `member`, or its lock has expired, or the
  // range reaches below start() or to end() or beyond (done, or never
  // handed out). Offsets in the range that are not records are skipped.
  std::optional<error> acknowledge(std::string_view member, offset first, offset last, ack_kind kind,
                                   clock_type::time_point now);

  // Acquired records whose lock expired by `now` become available again
  // (archived at the attempt limit). Returns how many.
  std::size_t expire_locks(clock_type::time_point now);
  // The earliest lock deadline (nullopt: nothing acquired).
  [[nodiscard]] std::optional<clock_type::time_point> next_lock_deadline() const;
  // A member left or was fenced: its acquired records become available
  // (archived at the attempt limit). Returns how many.
  std::size_t release_member(std::string_view member);
  // The members holding acquired records.
  [[nodiscard]] std::vector<std::string> holders() const;

  // Records waiting for their DLQ copy, lowest first, with their delivery count.
  [[nodiscard]] std::vector<std::pair<offset, std::uint16_t>> dead_letters() const;
  // The DLQ copy of `at` was acknowledged: it is archived for good. False
  // when `at` is not dead_lettering.
  bool dead_lettered(offset at);

  // The log's start moved to `log_start` (retention): records below it
  // are gone, and so is their state.
  void move_start(offset log_start);

  [[nodiscard]] share_state state() const;
  [[nodiscard]] share_stats stats(clock_type::time_point now) const;
  // The record's state and delivery count (nullopt: not in flight).
  [[nodiscard]] std::optional<std::pair<share_record_state, std::uint16_t>> record(offset at) const;

 private:
  static constexpr std::uint32_t no_member = 0xffffffff;
  struct flight_record {
    offset at{0};
    clock_type::time_point acquired_at{};  // while acquired
    clock_type::time_point deadline{};     // while acquired
    std::uint32_t member = no_member;      // names_[member] while acquired
    std::uint16_t delivery_count = 0;
    share_record_state state = share_record_state::available;
  };
  // The first record at or above `at` in `flight` (flight_, const or not).
  template <typename Deque>
  static auto lower_bound(Deque& flight, offset at);
  // The record goes back after a release or an expired lock.
  void give_back(flight_record& r);
  void archive(flight_record& r);
  void take(flight_record& r, std::uint32_t member, clock_type::time_point now, std::vector<acquired_range>& out);
  // Pops the leading acknowledged and archived records; start follows.
  void advance();
  std::uint32_t intern(std::string_view member);
  void unhold(std::uint32_t member);  // one record of `member` is no longer acquired
  void forget_if_idle(std::uint32_t member);  // its slot is free when it holds nothing

  share_limits limits_;
  offset start_;
  offset end_;
  std::deque<flight_record> flight_;  // ascending offsets, all in [start_, end_)
  // Members holding records: index -> id, and how many records each holds
  // (a slot is free again at 0).
  struct holder {
    std::string id;
    std::size_t held = 0;
  };
  std::vector<holder> names_;
  std::map<std::string, std::uint32_t, std::less<>> ids_;
};

}  // namespace runnel::group
