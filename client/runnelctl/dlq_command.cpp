// runnelctl dlq: list, inspect, replay (docs/delivery.md, "The dead-letter queue").

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/processor.h"
#include "runnel/producer.h"

#include "client/runnelctl/cli.h"

namespace runnelctl {

namespace {

struct dlq_record {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<runnel::header> headers;

  [[nodiscard]] std::optional<std::string> header(std::string_view k) const {
    for (const auto& h : headers) {
      if (h.key == k) return h.value;
    }
    return std::nullopt;
  }
  [[nodiscard]] std::int64_t header_int(std::string_view k, std::int64_t otherwise) const {
    auto v = header(k);
    if (!v) return otherwise;
    char* end = nullptr;
    const long long n = std::strtoll(v->c_str(), &end, 10);
    return (end && *end == '\0' && !v->empty()) ? n : otherwise;
  }
  // When it failed last: its header, else when the DLQ got it.
  [[nodiscard]] std::int64_t failed_at() const { return header_int(runnel::dlq_header::last_failure, timestamp_ms); }
};

// Reads one partition's records in [from, until), at most `max` (-1: all).
class partition_reader {
 public:
  explicit partition_reader(const args& a) {
    runnel::consumer_config cfg;
    cfg.bootstrap = bootstrap_of(a);
    cfg.client_id = "runnelctl";
    cfg.fetch_max_wait = std::chrono::milliseconds(100);
    consumer_ = check(runnel::consumer::connect(cfg));
  }

  std::vector<dlq_record> read(const std::string& topic, std::int32_t partition, std::int64_t from, std::int64_t until,
                               std::int64_t max) {
    std::vector<dlq_record> out;
    if (from >= until || max == 0) return out;
    const runnel::topic_partition_ref tp{topic, partition};
    check(consumer_->assign({tp}));
    check(consumer_->seek(tp, from));
    // Fails after 30 s without progress, however long the whole read.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (consumer_->position(tp) < until && (max < 0 || static_cast<std::int64_t>(out.size()) < max)) {
      if (std::chrono::steady_clock::now() > deadline) {
        fail(runnel::error{runnel::errc::timed_out, "reading " + topic + "/" + std::to_string(partition) +
                                                        " did not reach offset " + std::to_string(until)});
      }
      auto records = check(consumer_->poll(std::chrono::milliseconds(200)));
      if (!records.empty()) deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      for (const auto& r : records) {
        if (r.offset < from || r.offset >= until) continue;
        if (max >= 0 && static_cast<std::int64_t>(out.size()) >= max) break;
        dlq_record d;
        d.partition = r.partition;
        d.offset = r.offset;
        d.timestamp_ms = r.timestamp_ms;
        if (r.key) d.key.emplace(*r.key);
        if (r.value) d.value.emplace(*r.value);
        for (const auto& h : r.headers) d.headers.push_back({std::string(h.key), std::string(h.value)});
        out.push_back(std::move(d));
      }
    }
    return out;
  }

 private:
  std::unique_ptr<runnel::consumer> consumer_;
};

struct partition_span {
  std::int32_t partition = 0;
  std::int64_t start = 0;
  std::int64_t end = 0;
};

std::vector<partition_span> spans_of(runnel::admin& admin, const std::string& topic) {
  std::vector<partition_span> out;
  for (const auto& p : check(admin.describe_topic(topic)).partitions) {
    out.push_back({p.partition, check(admin.list_offset(topic, p.partition, runnel::earliest_offset)),
                   check(admin.list_offset(topic, p.partition, runnel::latest_offset))});
  }
  return out;
}

std::int32_t partition_arg(const args& a) {
  const auto v = to_int("--partition", *a.opt("--partition"));
  if (v < 0 || v > std::numeric_limits<std::int32_t>::max()) {
    throw usage_error{"--partition must be between 0 and 2147483647, got " + std::to_string(v)};
  }
  return static_cast<std::int32_t>(v);
}

std::string quoted_or_null(const std::optional<std::string>& s) {
  return s ? "\"" + json_escape(*s) + "\"" : "null";
}

// The headers that were the source record's (failure headers left out).
std::vector<runnel::header> source_headers(const dlq_record& r) {
  std::vector<runnel::header> out;
  for (const auto& h : r.headers) {
    if (!h.key.starts_with(runnel::dlq_header::prefix) && h.key != runnel::msg_id_header) out.push_back(h);
  }
  return out;
}

int dlq_list(const args& a) {
  if (a.positional.size() != 2) throw usage_error{"dlq list takes no arguments"};
  auto admin = connect_admin(a);
  partition_reader reader(a);
  const bool json = a.flag("--json");
  if (!json) {
    std::printf("%-28s %-9s %-10s %-26s %s\n", "TOPIC", "PARTITION", "RECORDS", "OLDEST-FAILURE", "NEWEST-FAILURE");
  }
  std::string out = "[";
  bool first_topic = true;
  for (const auto& t : check(admin->list_topics())) {
    bool is_dlq = t.name.ends_with(".dlq");
    if (!is_dlq) {
      auto c = check(admin->describe_configs(t.name));
      auto m = c.find("dead.letter.topic");
      is_dlq = m != c.end() && m->second.value == "true";
    }
    if (!is_dlq) continue;
    std::string parts = "[";
    for (const auto& s : spans_of(*admin, t.name)) {
      std::int64_t oldest = -1, newest = -1;
      if (s.end > s.start) {
        auto f = reader.read(t.name, s.partition, s.start, s.end, 1);
        auto l = reader.read(t.name, s.partition, s.end - 1, s.end, 1);
        if (!f.empty()) oldest = f[0].failed_at();
        if (!l.empty()) newest = l[0].failed_at();
      }
      if (json) {
        parts += (parts.size() > 1 ? "," : "") + std::string("{\"partition\":") + std::to_string(s.partition) +
                 ",\"records\":" + std::to_string(s.end - s.start) + ",\"start_offset\":" + std::to_string(s.start) +
                 ",\"end_offset\":" + std::to_string(s.end) + ",\"oldest_failure_ms\":" + std::to_string(oldest) +
                 ",\"newest_failure_ms\":" + std::to_string(newest) + "}";
      } else {
        std::printf("%-28s %-9d %-10lld %-26s %s\n", t.name.c_str(), s.partition,
                    static_cast<long long>(s.end - s.start), format_ms(oldest).c_str(), format_ms(newest).c_str());
      }
    }
    out += (first_topic ? "" : ",") + std::string("{\"topic\":\"") + json_escape(t.name) + "\",\"partitions\":" +
           parts + "]}";
    first_topic = false;
  }
  if (json) std::printf("%s]\n", out.c_str());
  return 0;
}

void print_record_json(const dlq_record& r) {
  namespace h = runnel::dlq_header;
  std::string hs = "[";
  for (const auto& x : source_headers(r)) {
    hs += (hs.size() > 1 ? "," : "") + std::string("{\"key\":\"") + json_escape(x.key) + "\",\"value\":\"" +
          json_escape(x.value) + "\"}";
  }
  hs += "]";
  std::printf(
      "{\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld,\"key\":%s,\"value\":%s,\"source\":{\"topic\":%s,"
      "\"partition\":%lld,\"offset\":%lld,\"timestamp\":%lld},\"group\":%s,\"error\":%s,\"attempts\":%lld,"
      "\"first_failure_ms\":%lld,\"last_failure_ms\":%lld,\"original_msg_id\":%s,\"headers\":%s}\n",
      r.partition, static_cast<long long>(r.offset), static_cast<long long>(r.timestamp_ms),
      quoted_or_null(r.key).c_str(), quoted_or_null(r.value).c_str(), quoted_or_null(r.header(h::topic)).c_str(),
      static_cast<long long>(r.header_int(h::partition, -1)), static_cast<long long>(r.header_int(h::offset, -1)),
      static_cast<long long>(r.header_int(h::timestamp, -1)), quoted_or_null(r.header(h::group)).c_str(),
      quoted_or_null(r.header(h::error)).c_str(), static_cast<long long>(r.header_int(h::attempts, -1)),
      static_cast<long long>(r.header_int(h::first_failure, -1)),
      static_cast<long long>(r.header_int(h::last_failure, -1)), quoted_or_null(r.header(h::original_msg_id)).c_str(),
      hs.c_str());
}

int dlq_inspect(const args& a) {
  if (a.positional.size() != 3) throw usage_error{"dlq inspect needs exactly one topic"};
  const std::string& topic = a.positional[2];
  std::optional<std::int32_t> only;
  if (a.opt("--partition")) only = partition_arg(a);
  std::optional<std::int64_t> at;
  if (auto o = a.opt("--offset")) {
    if (!only) throw usage_error{"--offset needs --partition"};
    if (a.opt("--max-messages")) throw usage_error{"--offset shows one record: it excludes --max-messages"};
    at = to_int("--offset", *o);
  }
  std::int64_t max = 20;
  if (auto m = a.opt("--max-messages")) {
    max = to_int("--max-messages", *m);
    if (max < 1) throw usage_error{"--max-messages must be at least 1"};
  }
  auto admin = connect_admin(a);
  partition_reader reader(a);
  const auto spans = spans_of(*admin, topic);
  if (only && std::none_of(spans.begin(), spans.end(), [&](const partition_span& s) { return s.partition == *only; })) {
    fail(runnel::error{runnel::errc::unknown_topic_or_partition, topic + " has no partition " + std::to_string(*only)});
  }
  std::vector<dlq_record> got;
  for (const auto& s : spans) {
    if (only && s.partition != *only) continue;
    const auto left = max - static_cast<std::int64_t>(got.size());
    if (left <= 0) break;
    if (at) {
      if (*at < s.start || *at >= s.end) {
        fail(runnel::error{runnel::errc::offset_out_of_range,
                           topic + "/" + std::to_string(s.partition) + " holds offsets " + std::to_string(s.start) +
                               " to " + std::to_string(s.end - 1) + ", not " + std::to_string(*at)});
      }
      got = reader.read(topic, s.partition, *at, *at + 1, 1);
      break;
    }
    auto part = reader.read(topic, s.partition, s.start, s.end, left);
    got.insert(got.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  namespace h = runnel::dlq_header;
  if (a.flag("--json")) {
    for (const auto& r : got) print_record_json(r);
    return 0;
  }
  std::printf("%-9s %-8s %-32s %-8s %-26s %-28s %s\n", "PARTITION", "OFFSET", "SOURCE", "ATTEMPTS", "LAST-FAILURE",
              "GROUP", "ERROR");
  for (const auto& r : got) {
    const std::string source = r.header(h::topic).value_or("-") + "/" +
                               std::to_string(r.header_int(h::partition, -1)) + "/" +
                               std::to_string(r.header_int(h::offset, -1));
    std::printf("%-9d %-8lld %-32s %-8lld %-26s %-28s %s\n", r.partition, static_cast<long long>(r.offset),
                source.c_str(), static_cast<long long>(r.header_int(h::attempts, -1)), format_ms(r.failed_at()).c_str(),
                r.header(h::group).value_or("-").c_str(), r.header(h::error).value_or("-").c_str());
  }
  return 0;
}

// The replay checkpoint of one DLQ partition: the offset ranges already
// replayed, inclusive, sorted and merged ("0-9,20-29" in the commit's
// metadata of group "runnel-dlq-replay/<dlq topic>/<target>").
using ranges = std::vector<std::pair<std::int64_t, std::int64_t>>;

std::optional<ranges> parse_ranges(const std::string& s) {
  ranges out;
  std::size_t i = 0;
  while (i < s.size()) {
    auto comma = s.find(',', i);
    if (comma == std::string::npos) comma = s.size();
    const auto item = s.substr(i, comma - i);
    const auto dash = item.find('-');
    if (dash == std::string::npos) return std::nullopt;
    char* e1 = nullptr;
    char* e2 = nullptr;
    const std::string lo = item.substr(0, dash), hi = item.substr(dash + 1);
    const long long a = std::strtoll(lo.c_str(), &e1, 10), b = std::strtoll(hi.c_str(), &e2, 10);
    if (lo.empty() || hi.empty() || *e1 != '\0' || *e2 != '\0' || a < 0 || b < a) return std::nullopt;
    out.emplace_back(a, b);
    i = comma + 1;
  }
  return out;
}

std::string ranges_text(ranges r) {
  std::sort(r.begin(), r.end());
  ranges merged;
  for (const auto& x : r) {
    if (!merged.empty() && x.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, x.second);
    } else {
      merged.push_back(x);
    }
  }
  std::string s;
  for (const auto& [lo, hi] : merged) s += (s.empty() ? "" : ",") + std::to_string(lo) + "-" + std::to_string(hi);
  return s;
}

bool replayed(const ranges& r, std::int64_t offset) {
  return std::any_of(r.begin(), r.end(), [&](const auto& x) { return offset >= x.first && offset <= x.second; });
}

// The replay checkpoint's group: "runnel-dlq-replay/<dlq>/<target>", or,
// past the broker's 255-byte group id limit, its head and an FNV-1a hash
// of the whole name.
std::string replay_group(const std::string& dlq, const std::string& to) {
  std::string name = "runnel-dlq-replay/" + dlq + "/" + to;
  if (name.size() <= 255) return name;
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
  char tail[24];
  std::snprintf(tail, sizeof tail, "#%016llx", static_cast<unsigned long long>(h));
  return name.substr(0, 255 - 17) + tail;
}

// --from / --until: an offset, or an ISO 8601 time (of the DLQ record).
struct bound {
  bool is_time = false;
  std::int64_t value = 0;
};

std::optional<bound> bound_of(const args& a, const std::string& name) {
  auto v = a.opt(name);
  if (!v) return std::nullopt;
  if (!v->empty() && std::all_of(v->begin(), v->end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bound{false, to_int(name, *v)};
  }
  if (auto ms = parse_datetime_ms(*v)) return bound{true, *ms};
  throw usage_error{name + " expects an offset or YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM], got '" + *v + "'"};
}

int dlq_replay(const args& a) {
  if (a.positional.size() != 3) throw usage_error{"dlq replay needs exactly one topic"};
  const std::string& dlq = a.positional[2];
  const std::string to = a.opt("--to").value_or("ORIGINAL");
  if (to.empty()) throw usage_error{"--to needs ORIGINAL or a topic"};
  const auto from = bound_of(a, "--from");
  const auto until = bound_of(a, "--until");
  std::optional<std::int32_t> only;
  if (a.opt("--partition")) only = partition_arg(a);
  const bool execute = a.flag("--execute");
  auto admin = connect_admin(a);
  partition_reader reader(a);
  const std::string checkpoint_group = replay_group(dlq, to);
  auto checkpoints = check(admin->committed_offsets(checkpoint_group));
  const bool to_original = to == "ORIGINAL";
  std::map<std::string, std::int32_t> target_partitions;  // topic -> partition count
  auto partitions_of = [&](const std::string& t) {
    auto it = target_partitions.find(t);
    if (it != target_partitions.end()) return it->second;
    const auto n = static_cast<std::int32_t>(check(admin->describe_topic(t)).partitions.size());
    return target_partitions[t] = n;
  };
  if (!to_original) (void)partitions_of(to);  // fails at once when it does not exist

  std::unique_ptr<runnel::producer> prod;
  if (execute) {
    runnel::producer_config pc;
    pc.bootstrap = bootstrap_of(a);
    pc.client_id = "runnelctl-dlq-replay";
    pc.acks = -1;
    prod = check(runnel::producer::connect(pc));
  }
  const bool json = a.flag("--json");
  if (!json) std::printf("%-9s %-9s %-9s %-9s %s\n", "PARTITION", "SELECTED", "REPLAYED", "TO-REPLAY", "TARGET");
  std::string json_rows = "[";
  std::int64_t total_sent = 0;
  for (const auto& s : spans_of(*admin, dlq)) {
    if (only && s.partition != *only) continue;
    std::int64_t lo = s.start, hi = s.end;
    auto narrow = [&](const std::optional<bound>& b, bool lower) {
      if (!b) return;
      std::int64_t o = b->value;
      if (b->is_time) o = check(admin->list_offset(dlq, s.partition, b->value));
      if (lower) {
        lo = std::max(lo, o);
      } else {
        hi = std::min(hi, o);
      }
    };
    narrow(from, true);
    narrow(until, false);
    ranges done;
    const runnel::topic_partition_ref tp{dlq, s.partition};
    if (auto c = checkpoints.find(tp); c != checkpoints.end()) {
      auto r = parse_ranges(c->second.metadata);
      if (!r) {
        fail(runnel::error{runnel::errc::invalid_argument,
                           "the replay checkpoint of " + dlq + "/" + std::to_string(s.partition) + " in group " +
                               checkpoint_group + " is malformed: '" + c->second.metadata + "'"});
      }
      done = std::move(*r);
    }
    auto records = reader.read(dlq, s.partition, lo, hi, -1);
    std::int64_t skipped = 0;
    std::vector<const dlq_record*> to_send;
    for (const auto& r : records) {
      if (replayed(done, r.offset)) {
        ++skipped;
      } else {
        to_send.push_back(&r);
      }
    }
    std::string targets;
    for (const auto* r : to_send) {
      const std::string t = to_original ? r->header(runnel::dlq_header::topic).value_or("") : to;
      if (t.empty()) {
        fail(runnel::error{runnel::errc::invalid_argument,
                           dlq + "/" + std::to_string(s.partition) + "/" + std::to_string(r->offset) +
                               " has no runnel.dlq.topic header: name the target with --to TOPIC"});
      }
      if (targets.find(t) == std::string::npos) targets += (targets.empty() ? "" : ",") + t;
    }
    if (json) {
      json_rows += (json_rows.size() > 1 ? "," : "") + std::string("{\"partition\":") + std::to_string(s.partition) +
                   ",\"selected\":" + std::to_string(records.size()) + ",\"replayed\":" + std::to_string(skipped) +
                   ",\"to_replay\":" + std::to_string(to_send.size()) + ",\"targets\":\"" + json_escape(targets) + "\"}";
    } else {
      std::printf("%-9d %-9zu %-9lld %-9zu %s\n", s.partition, records.size(), static_cast<long long>(skipped),
                  to_send.size(), targets.empty() ? "-" : targets.c_str());
    }
    if (!execute || to_send.empty()) continue;
    // Chunks: sent, acknowledged, then checkpointed.
    constexpr std::size_t chunk = 1000;
    for (std::size_t i = 0; i < to_send.size(); i += chunk) {
      std::vector<std::future<runnel::result<runnel::delivery>>> sent;
      const std::size_t n = std::min(chunk, to_send.size() - i);
      // Every offset from where the chunk starts to its last record is
      // either sent now or was replayed before (or is a gap): one range.
      ranges next = done;
      next.emplace_back(i == 0 ? lo : to_send[i]->offset, to_send[i + n - 1]->offset);
      const auto text = ranges_text(next);
      if (text.size() > 4096) {
        fail(runnel::error{runnel::errc::invalid_argument,
                           "the replay checkpoint of " + dlq + "/" + std::to_string(s.partition) +
                               " would be over 4096 bytes (" + std::to_string(text.size()) +
                               "): replay whole ranges"});
      }
      for (std::size_t k = 0; k < n; ++k) {
        const auto& r = *to_send[i + k];
        const std::string t = to_original ? *r.header(runnel::dlq_header::topic) : to;
        auto hs = source_headers(r);
        const std::string id = "dlq-replay/" + dlq + "/" + std::to_string(r.partition) + "/" + std::to_string(r.offset);
        if (id.size() <= 256) hs.push_back({std::string(runnel::msg_id_header), id});
        std::optional<std::string_view> key;
        if (r.key) key = *r.key;
        const auto src_partition = r.header_int(runnel::dlq_header::partition, -1);
        if (to_original && src_partition >= 0 && src_partition < partitions_of(t)) {
          sent.push_back(prod->send_to(t, static_cast<std::int32_t>(src_partition), key, r.value.value_or(""), hs));
        } else {
          sent.push_back(prod->send(t, key, r.value.value_or(""), hs));
        }
      }
      for (auto& f : sent) check(f.get());
      check(admin->alter_group_offsets(
          checkpoint_group, {{tp, runnel::offset_and_metadata{to_send[i + n - 1]->offset + 1, text, -1, -1}}}));
      done = *parse_ranges(text);
      total_sent += static_cast<std::int64_t>(n);
    }
  }
  if (json) {
    std::printf("{\"topic\":\"%s\",\"to\":\"%s\",\"execute\":%s,\"partitions\":%s],\"sent\":%lld}\n",
                json_escape(dlq).c_str(), json_escape(to).c_str(), execute ? "true" : "false", json_rows.c_str(),
                static_cast<long long>(total_sent));
  } else if (execute) {
    std::printf("replayed %lld records (checkpoint: group %s)\n", static_cast<long long>(total_sent),
                checkpoint_group.c_str());
  } else {
    std::printf("dry run: nothing was sent (add --execute to replay)\n");
  }
  if (prod) prod->close();
  return 0;
}

}  // namespace

int dlq_command(const args& a) {
  if (a.positional.size() < 2) throw usage_error{"dlq needs a subcommand: list, inspect, replay"};
  const std::string& sub = a.positional[1];
  if (sub == "list") return dlq_list(a);
  if (sub == "inspect") return dlq_inspect(a);
  if (sub == "replay") return dlq_replay(a);
  throw usage_error{"unknown dlq subcommand '" + sub + "'"};
}

}  // namespace runnelctl
