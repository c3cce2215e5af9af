#include "broker/net/append.h"

#include <fmt/format.h>

#include "broker/net/context.h"
#include "broker/net/replication.h"
#include "schemas/batch.h"

namespace runnel::net {

asio::awaitable<partition_outcome> append_on_owner(shard& s, topic_partition tp, std::vector<std::span<std::byte>> batches,
                                                   std::int8_t acks, std::chrono::steady_clock::time_point deadline) {
  partition_outcome out;
  out.partition = tp.partition.value();
  auto fail = [&out](wire::ErrorCode e, std::string msg) {
    out.error = e;
    out.message = std::move(msg);
    return out;
  };
  replica_manager* rm = s.replicas();
  std::int32_t epoch = -1;
  auto leadership = [&]() -> std::optional<partition_outcome> {
    auto r = rm->find(tp);
    if (!r || !r->leader || r->truncating) {
      return fail(wire::ErrorCode::NOT_LEADER, fmt::format("this broker does not lead {}", tp));
    }
    if (epoch >= 0 && r->epoch != epoch) return fail(wire::ErrorCode::NOT_LEADER, fmt::format("leadership of {} moved", tp));
    if (acks == -1 && static_cast<std::int32_t>(r->isr.size()) < r->min_isr) {
      return fail(wire::ErrorCode::NOT_ENOUGH_REPLICAS,
                  fmt::format("{}: {} in the ISR, min.insync.replicas is {}", tp, r->isr.size(), r->min_isr));
    }
    epoch = r->epoch;
    return std::nullopt;
  };
  if (rm != nullptr) {
    if (auto refused = leadership()) co_return *refused;
  }
  auto l = co_await s.logs().get_or_create(tp);
  if (!l) co_return fail(to_wire(l.error()), l.error().message());
  storage::log& log = **l;
  offset end{0};
  std::int32_t records_before = 0;  // of the record set, in the batches before this one
  std::uint64_t appended_bytes = 0;  // for fetches waiting on min_bytes
  for (auto batch : batches) {
    // Leadership can move while an earlier batch was written: every batch
    // is appended by a leader of the epoch it is stamped with.
    if (rm != nullptr) {
      if (auto refused = leadership()) co_return *refused;
    }
    const auto count = schemas::decode_header(batch).value().record_count;  // before a rebuild
    auto r = co_await log.append(batch, epoch);
    if (!r) co_return fail(to_wire(r.error()), r.error().message());
    appended_bytes += batch.size();
    for (const auto& [index, first] : r->dropped) out.duplicates.emplace_back(records_before + index, first.value());
    records_before += count;
    if (out.base_offset < 0) {
      out.base_offset = r->base_offset.value();
      out.append_time = r->append_time.value();
    }
    end = r->last_offset + 1;
  }
  out.durability = wire::Durability::written;
  out.replicas = 1;
  s.notify(tp, log.log_end_offset(), appended_bytes);
  if (rm != nullptr) rm->appended(tp);
  if (acks == -1) {
    if (auto ec = co_await log.flush()) co_return fail(to_wire(ec), ec.message());
    if (rm != nullptr) {
      auto [e, copies] = co_await rm->wait_replicated(tp, end, deadline);
      if (e != wire::ErrorCode::NONE) {
        co_return fail(e, e == wire::ErrorCode::REQUEST_TIMED_OUT
                              ? fmt::format("{}: not on every ISR member within the request timeout", tp)
                              : fmt::format("{}: {}", tp, wire::EnumNameErrorCode(e)));
      }
      out.replicas = copies;
    }
    out.durability = wire::Durability::fsynced;
  }
  out.log_start = log.log_start_offset().value();
  co_return out;
}


}  // namespace runnel::net
