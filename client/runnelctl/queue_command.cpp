// runnelctl queue create | receive: a topic with a share group for people
// who want a queue (docs/queues.md). `queue send` is `produce` (main.cpp).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "runnel/share_consumer.h"

#include "client/runnelctl/cli.h"

namespace runnelctl {

namespace {

int queue_create(const args& a, const std::string& name) {
  auto n = a.opt("--partitions");
  if (!n) throw usage_error{"queue create needs --partitions N"};
  const auto partitions = static_cast<std::int32_t>(to_int("--partitions", *n));
  std::map<std::string, std::string> group_configs;
  if (auto d = a.opt("--dlq")) group_configs["share.dlq.topic"] = *d;
  if (auto l = a.opt("--lock-ms")) group_configs["share.record.lock.duration.ms"] = std::to_string(to_int("--lock-ms", *l));
  if (auto m = a.opt("--max-attempts")) {
    group_configs["share.delivery.attempts.max"] = std::to_string(to_int("--max-attempts", *m));
  }
  const std::string group = a.opt("--group").value_or(name);
  auto adm = connect_admin(a);
  // The group's settings first: a bad one leaves no topic behind.
  check(adm->alter_group_configs(group, group_configs));
  check(adm->create_topic(name, partitions, 1, configs_of(a)));
  std::printf("created queue %s: topic %s with %d partitions, share group %s\n", name.c_str(), name.c_str(), partitions,
              group.c_str());
  return 0;
}

int queue_receive(const args& a, const std::string& name) {
  std::optional<runnel::acknowledge_type> ack = runnel::acknowledge_type::accept;
  if (auto k = a.opt("--ack")) {
    if (*k == "accept") {
      ack = runnel::acknowledge_type::accept;
    } else if (*k == "release") {
      ack = runnel::acknowledge_type::release;
    } else if (*k == "reject") {
      ack = runnel::acknowledge_type::reject;
    } else if (*k == "none") {
      ack.reset();
    } else {
      throw usage_error{"--ack must be accept, release, reject or none, got '" + *k + "'"};
    }
  }
  const std::int64_t max = a.opt("--max-messages") ? to_int("--max-messages", *a.opt("--max-messages")) : 1;
  if (max < 1) throw usage_error{"--max-messages must be at least 1"};
  const std::int64_t wait_ms = a.opt("--wait-ms") ? to_int("--wait-ms", *a.opt("--wait-ms")) : 5000;
  if (wait_ms < 0) throw usage_error{"--wait-ms must not be negative"};
  check(connect_admin(a)->describe_topic(name));  // an unknown queue is an error, not an empty wait
  runnel::share_consumer_config cfg;
  cfg.bootstrap = bootstrap_of(a);
  cfg.client_id = "runnelctl";
  cfg.group_id = a.opt("--group").value_or(name);
  cfg.explicit_acknowledgement = true;
  cfg.max_poll_records = static_cast<std::int32_t>(std::min<std::int64_t>(max, cfg.max_poll_records));
  auto sc = check(runnel::share_consumer::connect(cfg));
  check(sc->subscribe({name}));
  const bool json = a.flag("--json");
  std::int64_t got = 0;
  auto idle_since = std::chrono::steady_clock::now();
  while (got < max && std::chrono::steady_clock::now() - idle_since < std::chrono::milliseconds(wait_ms)) {
    auto recs = check(sc->poll(std::chrono::milliseconds(200)));
    if (!recs.empty()) idle_since = std::chrono::steady_clock::now();
    for (const auto& r : recs) {
      if (got < max) {
        ++got;
        const std::string value(r.value.value_or(""));
        if (json) {
          std::printf("{\"partition\":%d,\"offset\":%lld,\"delivery_count\":%d,\"value\":\"%s\"}\n", r.partition,
                      static_cast<long long>(r.offset), static_cast<int>(r.delivery_count), json_escape(value).c_str());
        } else {
          std::printf("%s\n", value.c_str());
        }
        if (ack) check(sc->acknowledge(r, *ack));
      } else {
        check(sc->acknowledge(r, runnel::acknowledge_type::release));  // more than asked for: back to the queue
      }
    }
  }
  check(sc->commit_sync());
  for (const auto& e : sc->take_acknowledgement_errors()) fail(e);
  check(sc->close());
  std::fflush(stdout);
  return 0;
}

}  // namespace

int queue_command(const args& a) {
  const auto& p = a.positional;
  if (p.size() < 2) throw usage_error{"queue needs a subcommand: create, send, receive"};
  if (p.size() != 3) throw usage_error{"queue " + p[1] + " needs exactly one queue name"};
  if (p[1] == "create") return queue_create(a, p[2]);
  if (p[1] == "receive") return queue_receive(a, p[2]);
  throw usage_error{"unknown queue subcommand '" + p[1] + "' (create, send, receive)"};
}

}  // namespace runnelctl
