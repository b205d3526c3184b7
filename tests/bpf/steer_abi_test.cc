// The C++ view of bpf/steer.h against the BTF that clang wrote into the
// built steer.bpf.o: every shared struct must have the same size, the same
// members in the same order at the same offsets, with the same sizes. And the
// object must define every map under the name userspace looks for, with the
// key and value sizes of the shared structs. Reads the object file only:
// needs no privileges.
//
// The path of the built steer.bpf.o comes in STEER_BPF_OBJ (meson sets it).
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bpf/steer.h"

namespace {

const char* ObjectPath() {
  const char* path = std::getenv("STEER_BPF_OBJ");
  return path != nullptr ? path : "";
}

struct Member {
  const char* name;
  size_t offset;
  size_t size;
};

struct StructView {
  const char* name;
  size_t size;
  std::vector<Member> members;
};

#define MEMBER(S, m)                 \
  Member {                           \
#m, offsetof(S, m), sizeof(S::m) \
  }

std::vector<StructView> CppView() {
  return {
      {"steer_lpm_v4",
       sizeof(steer_lpm_v4),
       {MEMBER(steer_lpm_v4, prefixlen), MEMBER(steer_lpm_v4, addr)}},
      {"steer_lpm_v6",
       sizeof(steer_lpm_v6),
       {MEMBER(steer_lpm_v6, prefixlen), MEMBER(steer_lpm_v6, addr)}},
      {"steer_prefix_value",
       sizeof(steer_prefix_value),
       {MEMBER(steer_prefix_value, tenant_id), MEMBER(steer_prefix_value, flags),
        MEMBER(steer_prefix_value, spare)}},
      {"steer_vlan_value", sizeof(steer_vlan_value), {MEMBER(steer_vlan_value, managed)}},
      {"steer_config",
       sizeof(steer_config),
       {MEMBER(steer_config, flags), MEMBER(steer_config, spare)}},
      {"steer_iface",
       sizeof(steer_iface),
       {MEMBER(steer_iface, match_flags), MEMBER(steer_iface, spare)}},
      {"steer_counters",
       sizeof(steer_counters),
       {MEMBER(steer_counters, steered), MEMBER(steer_counters, no_socket),
        MEMBER(steer_counters, passed), MEMBER(steer_counters, malformed),
        MEMBER(steer_counters, non_ip), MEMBER(steer_counters, nd),
        MEMBER(steer_counters, vlan_match), MEMBER(steer_counters, spare)}},
  };
}

class SteerAbiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_STRNE(ObjectPath(), "") << "set STEER_BPF_OBJ to the built steer.bpf.o";
    btf_ = btf__parse(ObjectPath(), nullptr);
    ASSERT_NE(btf_, nullptr) << "btf__parse(" << ObjectPath() << "): " << std::strerror(errno)
                             << " (built without -g?)";
  }
  void TearDown() override { btf__free(btf_); }
  btf* btf_ = nullptr;
};

TEST_F(SteerAbiTest, EverySharedStructMatchesItsBtf) {
  for (const StructView& view : CppView()) {
    SCOPED_TRACE(view.name);
    const int id = btf__find_by_name_kind(btf_, view.name, BTF_KIND_STRUCT);
    ASSERT_GT(id, 0) << "struct " << view.name << " is not in the BTF of " << ObjectPath();
    const btf_type* t = btf__type_by_id(btf_, static_cast<uint32_t>(id));
    EXPECT_EQ(t->size, view.size) << "sizeof(struct " << view.name << ")";
    ASSERT_EQ(btf_vlen(t), view.members.size()) << "member count of struct " << view.name;
    const btf_member* m = btf_members(t);
    for (size_t i = 0; i < view.members.size(); ++i, ++m) {
      const Member& want = view.members[i];
      EXPECT_STREQ(btf__name_by_offset(btf_, m->name_off), want.name) << "member " << i;
      EXPECT_EQ(btf_member_bitfield_size(t, static_cast<uint32_t>(i)), 0u)
          << want.name << " is a bitfield";
      EXPECT_EQ(btf_member_bit_offset(t, static_cast<uint32_t>(i)), want.offset * 8)
          << "offset of " << want.name;
      EXPECT_EQ(btf__resolve_size(btf_, m->type), static_cast<long long>(want.size))
          << "size of " << want.name;
    }
  }
}

TEST(SteerObjectTest, MapsCarryTheSharedNamesAndSizes) {
  bpf_object* obj = bpf_object__open_file(ObjectPath(), nullptr);
  ASSERT_NE(obj, nullptr) << "bpf_object__open_file(" << ObjectPath()
                          << "): " << std::strerror(errno);
  const struct {
    const char* name;
    bpf_map_type type;
    size_t key_size;
    size_t value_size;
  } want[] = {
      {STEER_NAME(STEER_MAP_V4), BPF_MAP_TYPE_LPM_TRIE, sizeof(steer_lpm_v4),
       sizeof(steer_prefix_value)},
      {STEER_NAME(STEER_MAP_V6), BPF_MAP_TYPE_LPM_TRIE, sizeof(steer_lpm_v6),
       sizeof(steer_prefix_value)},
      {STEER_NAME(STEER_MAP_VLANS), BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(steer_vlan_value)},
      {STEER_NAME(STEER_MAP_CONFIG), BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(steer_config)},
      {STEER_NAME(STEER_MAP_COUNTERS), BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(uint32_t),
       sizeof(steer_counters)},
      {STEER_NAME(STEER_MAP_XSKS), BPF_MAP_TYPE_XSKMAP, sizeof(uint32_t), sizeof(uint32_t)},
      {STEER_NAME(STEER_MAP_IFACES), BPF_MAP_TYPE_HASH, sizeof(uint32_t), sizeof(steer_iface)},
  };
  size_t maps_in_object = 0;
  bpf_map* it = nullptr;
  bpf_object__for_each_map(it, obj)++ maps_in_object;
  EXPECT_EQ(maps_in_object, std::size(want))
      << "a map in steer.bpf.c that this test (and steer.h) does not know";
  for (const auto& w : want) {
    SCOPED_TRACE(w.name);
    const bpf_map* m = bpf_object__find_map_by_name(obj, w.name);
    ASSERT_NE(m, nullptr) << "no map named " << w.name << " in " << ObjectPath();
    EXPECT_EQ(bpf_map__type(m), w.type);
    EXPECT_EQ(bpf_map__key_size(m), w.key_size);
    EXPECT_EQ(bpf_map__value_size(m), w.value_size);
  }
  EXPECT_EQ(bpf_map__max_entries(bpf_object__find_map_by_name(obj, STEER_NAME(STEER_MAP_VLANS))),
            STEER_VLAN_IDS);
  const bpf_program* prog = bpf_object__find_program_by_name(obj, STEER_NAME(STEER_PROG));
  ASSERT_NE(prog, nullptr) << "no program named " << STEER_NAME(STEER_PROG);
  EXPECT_EQ(bpf_program__type(prog), BPF_PROG_TYPE_XDP);
  bpf_object__close(obj);
}

}  // namespace
