package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The rule ids of {@link DeltaRules} are exactly those of spec/delta-rules-v1.json. */
class DeltaRulesTest {
  @Test
  void constantsAreTheIdsOfTheSpec() throws Exception {
    Path spec = Path.of("..", "spec", "delta-rules-v1.json");
    List<String> ids = new ArrayList<>();
    for (JsonElement rule :
        JsonParser.parseString(Files.readString(spec, StandardCharsets.UTF_8))
            .getAsJsonObject()
            .getAsJsonArray("rules")) {
      JsonObject r = rule.getAsJsonObject();
      ids.add(r.get("id").getAsString());
      assertTrue(r.get("section").getAsString().startsWith("13."), r.toString());
    }
    assertEquals(7, ids.size());
    Set<String> constants = new HashSet<>();
    for (Field field : DeltaRules.class.getDeclaredFields()) {
      int mods = field.getModifiers();
      if (field.getType() == String.class
          && Modifier.isPublic(mods)
          && Modifier.isStatic(mods)
          && Modifier.isFinal(mods)) {
        String id = (String) field.get(null);
        assertEquals(id.toUpperCase(Locale.ROOT).replace('.', '_'), field.getName(), id);
        assertTrue(constants.add(id), "two constants for " + id);
      }
    }
    assertEquals(new HashSet<>(ids), constants);
    assertEquals(ids, DeltaRules.ALL);
    // No delta rule id is a checkpoint rule id.
    for (String id : ids) {
      assertTrue(!Rules.ALL.contains(id), id);
    }
  }
}
