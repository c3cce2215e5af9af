#include "tests/integration/topic_reader.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>

#include "runnel/consumer.h"

using namespace std::chrono_literals;

namespace runnel::testing {

std::unique_ptr<admin> connect_admin(const std::string& bootstrap) {
  admin_config ac;
  ac.bootstrap = bootstrap;
  ac.timeout = 10s;
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  return std::move(*a);
}

std::vector<stored_record> read_topic(const std::string& bootstrap, const std::string& topic) {
  auto a = connect_admin(bootstrap);
  auto t = a->describe_topic(topic);
  REQUIRE_MESSAGE(t.has_value(), topic << ": " << (t ? "" : t.error().what()));
  consumer_config cc;
  cc.bootstrap = bootstrap;
  cc.fetch_max_wait = 100ms;
  auto c = consumer::connect(cc);
  REQUIRE(c.has_value());
  std::map<topic_partition_ref, std::int64_t> end;
  std::vector<topic_partition_ref> refs;
  for (const auto& p : t->partitions) {
    const topic_partition_ref tp{topic, p.partition};
    auto e = a->list_offset(topic, p.partition, latest_offset);
    REQUIRE(e.has_value());
    end[tp] = *e;
    refs.push_back(tp);
  }
  REQUIRE((*c)->assign(refs).has_value());
  std::vector<stored_record> out;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  auto done = [&] {
    return std::all_of(end.begin(), end.end(), [&](const auto& kv) { return (*c)->position(kv.first) >= kv.second; });
  };
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    auto recs = (*c)->poll(200ms);
    REQUIRE(recs.has_value());
    for (const auto& r : *recs) {
      stored_record s{r.partition, r.offset, r.timestamp_ms, std::nullopt, std::string(r.value.value_or("")), {}};
      if (r.key) s.key.emplace(*r.key);
      for (const auto& h : r.headers) s.headers[std::string(h.key)] = std::string(h.value);
      out.push_back(std::move(s));
    }
  }
  REQUIRE(done());
  return out;
}

}  // namespace runnel::testing
