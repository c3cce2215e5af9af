#include "broker/group/records.h"

#include <cstring>

#include "schemas/group_records_generated.h"

namespace runnel::group {

namespace {

constexpr std::uint8_t key_version = 1;
constexpr std::uint8_t offset_key_type = 1;
constexpr std::uint8_t group_key_type = 2;
constexpr std::uint8_t share_state_key_type = 3;

void put_u16(std::vector<std::byte>& out, std::size_t v) {
  out.push_back(static_cast<std::byte>(v & 0xff));
  out.push_back(static_cast<std::byte>((v >> 8) & 0xff));
}

void put_string(std::vector<std::byte>& out, std::string_view s) {
  put_u16(out, s.size());
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  out.insert(out.end(), p, p + s.size());
}

// Reads from the front of `in`; false when too short.
bool get_string(std::span<const std::byte>& in, std::string& s) {
  if (in.size() < 2) return false;
  const std::size_t n = std::to_integer<std::size_t>(in[0]) | (std::to_integer<std::size_t>(in[1]) << 8);
  if (in.size() < 2 + n) return false;
  s.assign(reinterpret_cast<const char*>(in.data() + 2), n);
  in = in.subspan(2 + n);
  return true;
}

using fbb_t = flatbuffers::FlatBufferBuilder;

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::TopicPartitions>>> encode_partitions(
    fbb_t& fbb, const std::set<topic_partition>& parts) {
  std::vector<flatbuffers::Offset<fb::TopicPartitions>> out;
  for_each_topic(parts, [&](const std::string& topic, const std::vector<std::int32_t>& ps) {
    out.push_back(fb::CreateTopicPartitionsDirect(fbb, topic.c_str(), &ps));
  });
  return fbb.CreateVector(out);
}

std::set<topic_partition> decode_partitions(const flatbuffers::Vector<flatbuffers::Offset<fb::TopicPartitions>>* v) {
  std::set<topic_partition> out;
  if (v == nullptr) return out;
  for (const auto* t : *v) {
    if (t->partitions() == nullptr) continue;
    for (std::int32_t p : *t->partitions()) out.emplace(t->topic()->str(), partition_id(p));
  }
  return out;
}

std::string str(const flatbuffers::String* s) { return s != nullptr ? s->str() : std::string(); }

std::vector<std::byte> finish(fbb_t& fbb) {
  const auto* p = reinterpret_cast<const std::byte*>(fbb.GetBufferPointer());
  return {p, p + fbb.GetSize()};
}

}  // namespace

namespace {

// Offset commits and share states: [version][type][group][topic][partition].
std::vector<std::byte> encode_partition_key(std::uint8_t type, const std::string& group, const topic_partition& tp) {
  std::vector<std::byte> out{std::byte{key_version}, std::byte{type}};
  put_string(out, group);
  put_string(out, tp.topic);
  const auto p = static_cast<std::uint32_t>(tp.partition.value());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>((p >> (8 * i)) & 0xff));
  return out;
}

}  // namespace

std::vector<std::byte> encode_key(const offset_key& k) { return encode_partition_key(offset_key_type, k.group, k.tp); }

std::vector<std::byte> encode_key(const share_state_key& k) {
  return encode_partition_key(share_state_key_type, k.group, k.tp);
}

std::vector<std::byte> encode_key(const group_key& k) {
  std::vector<std::byte> out{std::byte{key_version}, std::byte{group_key_type}};
  put_string(out, k.group);
  return out;
}

std::optional<record_key> decode_key(std::span<const std::byte> in) {
  if (in.size() < 2 || in[0] != std::byte{key_version}) return std::nullopt;
  const auto type = std::to_integer<std::uint8_t>(in[1]);
  in = in.subspan(2);
  std::string g;
  if (!get_string(in, g)) return std::nullopt;
  if (type == group_key_type) {
    if (!in.empty()) return std::nullopt;
    return group_key{std::move(g)};
  }
  if (type != offset_key_type && type != share_state_key_type) return std::nullopt;
  std::string topic;
  if (!get_string(in, topic) || in.size() != 4) return std::nullopt;
  std::uint32_t p = 0;
  for (int i = 0; i < 4; ++i) p |= std::to_integer<std::uint32_t>(in[static_cast<std::size_t>(i)]) << (8 * i);
  topic_partition tp(std::move(topic), partition_id(static_cast<std::int32_t>(p)));
  if (type == share_state_key_type) return share_state_key{std::move(g), std::move(tp)};
  return offset_key{std::move(g), std::move(tp)};
}

std::vector<std::byte> encode_offset_value(const committed_offset& v) {
  fbb_t fbb(128);
  // CreateString(std::string) keeps every byte; the *Direct form's c_str() stops at a NUL.
  const auto metadata = fbb.CreateString(v.metadata);
  fbb.Finish(fb::CreateOffsetCommitValue(fbb, v.offset, v.leader_epoch, metadata, v.commit_timestamp_ms));
  return finish(fbb);
}

std::optional<committed_offset> decode_offset_value(std::span<const std::byte> bytes) {
  flatbuffers::Verifier verifier(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  if (!verifier.VerifyBuffer<fb::OffsetCommitValue>(nullptr)) return std::nullopt;
  const auto* v = flatbuffers::GetRoot<fb::OffsetCommitValue>(bytes.data());
  return committed_offset{v->offset(), v->leader_epoch(), str(v->metadata()), v->commit_timestamp_ms()};
}

std::vector<std::byte> encode_group_value(const group& g) {
  fbb_t fbb(1024);
  std::vector<flatbuffers::Offset<fb::MemberValue>> members;
  static const std::set<topic_partition> none;
  for (const auto& [id, m] : g.members) {
    std::vector<flatbuffers::Offset<flatbuffers::String>> names;
    for (const auto& t : m.topic_names) names.push_back(fbb.CreateString(t));
    auto target = g.target.find(id);
    auto target_parts = encode_partitions(fbb, target != g.target.end() ? target->second : none);
    auto assigned = encode_partitions(fbb, m.assigned);
    auto revoking = encode_partitions(fbb, m.revoking);
    members.push_back(fb::CreateMemberValue(
        fbb, fbb.CreateString(m.id), fbb.CreateString(m.instance_id), fbb.CreateString(m.client_id),
        fbb.CreateString(m.client_host), fbb.CreateString(m.rack), m.epoch, m.previous_epoch, m.rebalance_timeout_ms,
        m.session_timeout_ms, fbb.CreateVector(names), fbb.CreateString(m.regex), assigned, revoking, target_parts,
        m.left_static));
  }
  std::vector<flatbuffers::Offset<fb::TopicCount>> counts;
  for (const auto& [t, n] : g.subscribed) counts.push_back(fb::CreateTopicCountDirect(fbb, t.c_str(), n));
  // No configs: no field, so a group without them encodes as it did before they existed.
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::GroupConfig>>> configs;
  if (!g.configs.empty()) {
    std::vector<flatbuffers::Offset<fb::GroupConfig>> entries;
    for (const auto& [k, v] : g.configs) entries.push_back(fb::CreateGroupConfig(fbb, fbb.CreateString(k), fbb.CreateString(v)));
    configs = fbb.CreateVector(entries);
  }
  fbb.Finish(fb::CreateGroupValue(fbb, g.epoch, g.assignment_epoch, fbb.CreateString(g.assignor), fbb.CreateVector(members),
                                  fbb.CreateVector(counts), static_cast<std::uint8_t>(g.type), configs));
  return finish(fbb);
}

bool decode_group_value(std::span<const std::byte> bytes, group& g) {
  flatbuffers::Verifier verifier(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  if (!verifier.VerifyBuffer<fb::GroupValue>(nullptr)) return false;
  const auto* v = flatbuffers::GetRoot<fb::GroupValue>(bytes.data());
  if (v->type() > static_cast<std::uint8_t>(group_type::share)) return false;
  g.type = static_cast<group_type>(v->type());
  g.epoch = v->group_epoch();
  g.assignment_epoch = v->assignment_epoch();
  g.assignor = str(v->assignor());
  g.members.clear();
  g.target.clear();
  g.subscribed.clear();
  if (v->members() != nullptr) {
    for (const auto* mv : *v->members()) {
      member m;
      m.id = mv->member_id()->str();
      m.instance_id = str(mv->instance_id());
      m.client_id = str(mv->client_id());
      m.client_host = str(mv->client_host());
      m.rack = str(mv->rack_id());
      m.epoch = mv->member_epoch();
      m.previous_epoch = mv->previous_epoch();
      m.rebalance_timeout_ms = mv->rebalance_timeout_ms();
      m.session_timeout_ms = mv->session_timeout_ms();
      if (mv->subscribed_topic_names() != nullptr) {
        for (const auto* t : *mv->subscribed_topic_names()) m.topic_names.push_back(t->str());
      }
      m.regex = str(mv->subscribed_topic_regex());
      m.assigned = decode_partitions(mv->assigned());
      m.revoking = decode_partitions(mv->revoking());
      m.left_static = mv->left_static();
      g.target[m.id] = decode_partitions(mv->target());
      g.members.emplace(m.id, std::move(m));
    }
  }
  if (v->subscribed() != nullptr) {
    for (const auto* c : *v->subscribed()) g.subscribed[c->topic()->str()] = c->partitions();
  }
  g.configs.clear();
  if (v->configs() != nullptr) {
    for (const auto* c : *v->configs()) g.configs[c->key()->str()] = c->value()->str();
  }
  g.has_record = true;
  return true;
}

std::vector<std::byte> encode_share_state_value(const share_state& s) {
  fbb_t fbb(64 + 24 * s.runs.size());
  std::vector<fb::ShareStateRun> runs;
  runs.reserve(s.runs.size());
  for (const auto& r : s.runs) {
    runs.emplace_back(r.first.value(), r.last.value(), r.delivery_count, static_cast<std::uint8_t>(r.state));
  }
  fbb.Finish(fb::CreateShareStateValue(fbb, s.start.value(), s.end.value(), fbb.CreateVectorOfStructs(runs), s.leader_epoch));
  return finish(fbb);
}

std::optional<share_state> decode_share_state_value(std::span<const std::byte> bytes) {
  flatbuffers::Verifier verifier(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  if (!verifier.VerifyBuffer<fb::ShareStateValue>(nullptr)) return std::nullopt;
  const auto* v = flatbuffers::GetRoot<fb::ShareStateValue>(bytes.data());
  share_state s{offset(v->start_offset()), offset(v->end_offset()), {}, v->leader_epoch()};
  if (v->runs() != nullptr) {
    s.runs.reserve(v->runs()->size());
    for (const auto* r : *v->runs()) {
      if (r->state() > static_cast<std::uint8_t>(share_record_state::dead_lettering)) return std::nullopt;
      s.runs.push_back(share_state_run{offset(r->first()), offset(r->last()),
                                       static_cast<share_record_state>(r->state()), r->delivery_count()});
    }
  }
  return s;
}

}  // namespace runnel::group
