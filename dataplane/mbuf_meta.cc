#include "dataplane/mbuf_meta.h"

#include <fmt/format.h>
#include <rte_errno.h>

namespace shaper::dataplane {

std::string RegisterMbufMeta() {
  if (g_mbuf_meta_offset >= 0) return {};
  rte_mbuf_dynfield desc{};
  snprintf(desc.name, sizeof(desc.name), "%s", "shaper_mbuf_meta");
  desc.size = sizeof(MbufMeta);
  desc.align = alignof(MbufMeta);
  const int offset = rte_mbuf_dynfield_register(&desc);
  if (offset < 0)
    return fmt::format("rte_mbuf_dynfield_register(shaper_mbuf_meta, {} bytes): {}",
                       sizeof(MbufMeta), rte_strerror(rte_errno));
  g_mbuf_meta_offset = offset;
  return {};
}

}  // namespace shaper::dataplane
