package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The rule ids of {@link DeltaRules} are exactly those of spec/delta-rules-v1.json. */
class DeltaRulesTest {
  @Test
  void constantsAreTheIdsOfTheSpec() throws Exception {
    List<String> ids = new ArrayList<>();
    for (JsonObject r : SpecRules.rules("delta-rules-v1.json")) {
      ids.add(r.get("id").getAsString());
      assertTrue(r.get("section").getAsString().startsWith("13."), r.toString());
    }
    assertEquals(7, ids.size());
    Set<String> constants = SpecRules.constants(DeltaRules.class);
    assertEquals(new HashSet<>(ids), constants);
    assertEquals(ids, DeltaRules.ALL);
    // No delta rule id is a checkpoint rule id.
    for (String id : ids) {
      assertTrue(!Rules.ALL.contains(id), id);
    }
  }
}
