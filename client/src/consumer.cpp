#include "runnel/consumer.h"

#include <map>

#include "client/src/requests.h"
#include "client/src/wire_client.h"
#include "schemas/batch.h"

namespace runnel {

namespace {

std::string_view sv(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

}  // namespace

struct consumer::impl {
  struct partition_state {
    std::shared_ptr<const std::string> topic;  // record views point at it
    std::int64_t position = 0;
    std::int64_t high_watermark = -1;
  };
  consumer_config cfg;
  std::unique_ptr<client::wire_client> wire;
  std::map<topic_partition_ref, partition_state> assigned;
  std::optional<std::future<result<client::response>>> pending;
  std::uint64_t generation = 0;          // bumps on assign/seek: a pending fetch is stale
  std::uint64_t pending_generation = 0;

  void issue_fetch(std::chrono::milliseconds max_wait) {
    flatbuffers::FlatBufferBuilder fbb;
    std::map<std::string, std::vector<flatbuffers::Offset<wire::FetchPartition>>> by_topic;
    for (const auto& [tp, st] : assigned) {
      by_topic[tp.topic].push_back(wire::CreateFetchPartition(fbb, tp.partition, st.position, cfg.max_partition_fetch_bytes));
    }
    std::vector<flatbuffers::Offset<wire::FetchTopic>> topics;
    for (auto& [name, parts] : by_topic) topics.push_back(wire::CreateFetchTopicDirect(fbb, name.c_str(), &parts));
    auto body = wire::CreateFetchRequestDirect(fbb, static_cast<std::int32_t>(max_wait.count()), cfg.fetch_min_bytes,
                                               cfg.fetch_max_bytes, &topics);
    auto p = std::make_shared<std::promise<result<client::response>>>();
    pending = p->get_future();
    pending_generation = generation;
    wire->call(std::move(fbb), wire::Request::FetchRequest, body.Union(), {},
               [p](result<client::response> r) { p->set_value(std::move(r)); });
  }

  result<std::int64_t> list_offset(const topic_partition_ref& tp, std::int64_t timestamp) {
    client::response keep;
    auto p = client::list_offsets_one(*wire, tp.topic, tp.partition, timestamp, keep);
    if (!p) return std::unexpected(p.error());
    return (*p)->offset();
  }

  // Turns a fetch response into records; advances positions.
  result<consumer_records> decode(const client::response& r) {
    consumer_records out;
    // Positions move only when the whole response decoded: an error leaves
    // every partition where it was, so nothing is skipped.
    std::map<partition_state*, std::int64_t> positions;
    std::map<partition_state*, std::int64_t> watermarks;
    const auto* resp = r.envelope->body_as_FetchResponse();
    if (resp == nullptr) return std::unexpected(error{errc::bad_response, "Fetch"});
    out.buffers_.push_back(r.body);
    if (resp->topics() == nullptr) return out;
    for (const auto* t : *resp->topics()) {
      if (t->name() == nullptr || t->partitions() == nullptr) continue;
      for (const auto* p : *t->partitions()) {
        auto it = assigned.find(topic_partition_ref{t->name()->str(), p->partition()});
        if (it == assigned.end()) continue;
        auto& st = it->second;
        std::int64_t& pos = positions.try_emplace(&st, st.position).first->second;
        if (p->error() != wire::ErrorCode::NONE) {
          auto e = client::make_error(p->error(), nullptr);
          e.message = it->first.topic + "/" + std::to_string(p->partition()) + " at offset " +
                      std::to_string(pos) + " (log " + std::to_string(p->log_start_offset()) + ".." +
                      std::to_string(p->high_watermark()) + ")";
          return std::unexpected(e);
        }
        watermarks[&st] = p->high_watermark();
        const auto* ref = p->records();
        if (ref == nullptr || ref->length() == 0) continue;
        if (std::uint64_t{ref->offset()} + ref->length() > r.payload.size()) {
          return std::unexpected(error{errc::bad_response, "records outside the payload"});
        }
        auto rest = r.payload.subspan(ref->offset(), ref->length());
        while (!rest.empty()) {
          auto h = schemas::decode_header(rest);
          if (!h || h->length > rest.size()) return std::unexpected(error{errc::corrupt_message, "truncated batch in fetch"});
          // CRC and structure are checked on every batch the consumer reads.
          auto view = schemas::batch_view::open(rest.first(h->length), schemas::verify_limits{h->length});
          if (!view) {
            return std::unexpected(error{errc::corrupt_message, it->first.topic + "/" + std::to_string(p->partition()) +
                                                                    " offset " + std::to_string(h->base_offset.value()) +
                                                                    ": " + view.error().message()});
          }
          for (std::size_t i = 0; i < view->record_count(); ++i) {
            auto rec = view->record(i);
            if (rec.off.value() < pos) continue;  // the batch began before our position
            record_view v;
            v.topic = *st.topic;
            v.partition = p->partition();
            v.offset = rec.off.value();
            v.timestamp_ms = rec.timestamp.value();
            if (rec.key) v.key = sv(*rec.key);
            if (rec.value) v.value = sv(*rec.value);
            for (std::size_t k = 0; k < rec.header_count(); ++k) v.headers.push_back({rec.header_key(k), sv(rec.header_value(k))});
            out.records_.push_back(std::move(v));
          }
          pos = std::max(pos, view->header().next_offset().value());
          rest = rest.subspan(h->length);
        }
      }
    }
    for (const auto& [st, pos] : positions) st->position = pos;
    for (const auto& [st, hw] : watermarks) st->high_watermark = hw;
    for (const auto& [tp, st] : assigned) out.buffers_.push_back(st.topic);
    return out;
  }
};

consumer::consumer(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
consumer::~consumer() = default;

result<std::unique_ptr<consumer>> consumer::connect(consumer_config cfg) {
  auto hp = client::parse_host_port(cfg.bootstrap);
  if (!hp) return std::unexpected(error{errc::invalid_argument, "bootstrap '" + cfg.bootstrap + "' is not host:port"});
  auto i = std::make_unique<impl>();
  i->cfg = cfg;
  // The long poll is part of the wait: the request timeout covers it.
  i->wire = std::make_unique<client::wire_client>(hp->first, hp->second, cfg.client_id, cfg.request_timeout + cfg.fetch_max_wait);
  if (auto r = i->wire->connect(); !r) return std::unexpected(r.error());
  return std::unique_ptr<consumer>(new consumer(std::move(i)));
}

result<void> consumer::assign(const std::vector<topic_partition_ref>& partitions) {
  auto& i = *impl_;
  std::map<topic_partition_ref, impl::partition_state> next;
  std::map<std::string, std::shared_ptr<const std::string>> names;
  for (const auto& tp : partitions) {
    auto& name = names[tp.topic];
    if (!name) name = std::make_shared<const std::string>(tp.topic);
    auto start = i.list_offset(tp, i.cfg.start_at_earliest ? -2 : -1);
    if (!start) return std::unexpected(start.error());
    next[tp] = impl::partition_state{name, *start, -1};
  }
  i.assigned = std::move(next);
  ++i.generation;
  return {};
}

result<void> consumer::seek(const topic_partition_ref& tp, std::int64_t to) {
  auto it = impl_->assigned.find(tp);
  if (it == impl_->assigned.end()) return std::unexpected(error{errc::invalid_argument, tp.topic + "/" + std::to_string(tp.partition) + " is not assigned"});
  if (to < 0) return std::unexpected(error{errc::invalid_argument, "negative offset"});
  it->second.position = to;
  ++impl_->generation;
  return {};
}

result<void> consumer::seek_to_beginning(const topic_partition_ref& tp) { return seek_to_timestamp(tp, -2); }
result<void> consumer::seek_to_end(const topic_partition_ref& tp) { return seek_to_timestamp(tp, -1); }

result<void> consumer::seek_to_timestamp(const topic_partition_ref& tp, std::int64_t when) {
  if (!impl_->assigned.contains(tp)) return std::unexpected(error{errc::invalid_argument, tp.topic + "/" + std::to_string(tp.partition) + " is not assigned"});
  auto o = impl_->list_offset(tp, when);
  if (!o) return std::unexpected(o.error());
  return seek(tp, *o);
}

std::int64_t consumer::position(const topic_partition_ref& tp) const {
  auto it = impl_->assigned.find(tp);
  return it == impl_->assigned.end() ? -1 : it->second.position;
}

std::int64_t consumer::high_watermark(const topic_partition_ref& tp) const {
  auto it = impl_->assigned.find(tp);
  return it == impl_->assigned.end() ? -1 : it->second.high_watermark;
}

result<consumer_records> consumer::poll(std::chrono::milliseconds timeout) {
  auto& i = *impl_;
  if (i.assigned.empty()) return std::unexpected(error{errc::invalid_argument, "nothing assigned"});
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (!i.pending || i.pending_generation != i.generation) {
      if (i.pending) i.pending->wait();  // a stale fetch: its positions were overridden
      i.issue_fetch(std::min(timeout, i.cfg.fetch_max_wait));
    }
    if (i.pending->wait_until(deadline) != std::future_status::ready) return consumer_records{};
    auto r = i.pending->get();
    i.pending.reset();
    if (!r) return std::unexpected(r.error());
    if (auto e = client::envelope_error(*r->envelope)) return std::unexpected(*e);
    auto records = i.decode(*r);
    if (!records) return records;
    // Pipelining: the next fetch travels while the caller handles these.
    i.issue_fetch(i.cfg.fetch_max_wait);
    if (!records->empty() || std::chrono::steady_clock::now() >= deadline) return records;
  }
}

}  // namespace runnel
