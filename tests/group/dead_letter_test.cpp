// The DLQ copy of a share group's archived record (broker/group/dead_letter.h):
// judged by the record a reader of the built batch sees.

#include <doctest/doctest.h>

#include <map>
#include <string>

#include "broker/group/dead_letter.h"
#include "broker/group/group_config.h"
#include "schemas/batch.h"

using namespace runnel;
using namespace runnel::group;

namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
std::string text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::map<std::string, std::string> headers_of(const schemas::record_view& r) {
  std::map<std::string, std::string> out;
  for (std::size_t i = 0; i < r.header_count(); ++i) out[std::string(r.header_key(i))] = text(r.header_value(i));
  return out;
}

}  // namespace

TEST_CASE("dead letter: the copy keeps key, value and headers, adds the failure headers and its own message id") {
  schemas::batch_builder src;
  const std::vector<schemas::header_in> hs{{"trace", bytes("t-1")},
                                           {"runnel.msg.id", bytes("order-7")},
                                           {"runnel.dlq.error", bytes("an old failure")}};
  src.add(bytes("k"), bytes("v"), timestamp_ms(1234), hs);
  auto batch = src.finish();
  schemas::stamp_base_offset(batch, offset(41));
  auto view = schemas::batch_view::open(batch, {});
  REQUIRE(view.has_value());
  schemas::batch_builder b;
  REQUIRE(add_dead_letter(b, view->record(0), "workers", topic_partition("jobs", partition_id(2)), 5,
                          dead_letter_reason(5, 5), timestamp_ms(99)));
  auto copy = b.finish();
  auto cv = schemas::batch_view::open(copy, {});
  REQUIRE(cv.has_value());
  const auto r = cv->record(0);
  CHECK(text(*r.key) == "k");
  CHECK(text(*r.value) == "v");
  const auto h = headers_of(r);
  CHECK(h.at("trace") == "t-1");
  CHECK(h.at("runnel.dlq.original.msg.id") == "order-7");
  CHECK(h.at("runnel.msg.id") == "workers/jobs/2/41");
  CHECK(h.at("runnel.dlq.topic") == "jobs");
  CHECK(h.at("runnel.dlq.partition") == "2");
  CHECK(h.at("runnel.dlq.offset") == "41");
  CHECK(h.at("runnel.dlq.timestamp") == "1234");
  CHECK(h.at("runnel.dlq.group") == "workers");
  CHECK(h.at("runnel.dlq.attempts") == "5");
  CHECK(h.at("runnel.dlq.error") == "not accepted in 5 deliveries (share.delivery.attempts.max)");
  CHECK(h.at("runnel.dlq.last.failure.ms") == "99");
  CHECK(h.size() == 11);  // the old runnel.dlq.error is not carried over
}

TEST_CASE("dead letter: a message id over 256 bytes adds nothing, and a rejection says so") {
  schemas::batch_builder src;
  src.add(bytes("k"), bytes("v"), timestamp_ms(1));
  auto batch = src.finish();
  auto view = schemas::batch_view::open(batch, {});
  REQUIRE(view.has_value());
  schemas::batch_builder b;
  CHECK_FALSE(add_dead_letter(b, view->record(0), std::string(255, 'g'), topic_partition(std::string(10, 't'), partition_id(0)),
                              1, "x", timestamp_ms(1)));
  CHECK(b.empty());
  CHECK(dead_letter_reason(2, 5) == "rejected by a member (delivery 2)");
}

TEST_CASE("group configs: limits come from the overrides over the broker's defaults") {
  share_limits defaults;
  defaults.lock_duration = std::chrono::milliseconds(30'000);
  defaults.max_delivery_attempts = 5;
  auto none = share_limits_of({}, defaults);
  CHECK(none.lock_duration == std::chrono::milliseconds(30'000));
  CHECK_FALSE(none.dead_letter);
  auto set = apply_group_config_changes({}, {{"share.record.lock.duration.ms", "500"}, {"share.dlq.topic", "d"}});
  REQUIRE(set.has_value());
  auto l = share_limits_of(*set, defaults);
  CHECK(l.lock_duration == std::chrono::milliseconds(500));
  CHECK(l.max_delivery_attempts == 5);
  CHECK(l.dead_letter);
  auto described = describe_group_configs(*set, defaults);
  REQUIRE(described.size() == 3);
  CHECK(described[0].value == "500");
  CHECK_FALSE(described[0].is_default);
  CHECK(described[1].is_default);
  auto removed = apply_group_config_changes(*set, {{"share.dlq.topic", ""}});
  REQUIRE(removed.has_value());
  CHECK_FALSE(share_limits_of(*removed, defaults).dead_letter);
  CHECK_FALSE(apply_group_config_changes(*set, {{"share.bogus", ""}}).has_value());
}
