package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
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

/** The rules files of spec/ and the constants that name their rule ids. */
final class SpecRules {
  private SpecRules() {}

  /** The rules of spec/{@code file}, in its order. */
  static List<JsonObject> rules(String file) throws IOException {
    Path spec = Path.of("..", "spec", file);
    List<JsonObject> rules = new ArrayList<>();
    for (JsonElement rule :
        JsonParser.parseString(Files.readString(spec, StandardCharsets.UTF_8))
            .getAsJsonObject()
            .getAsJsonArray("rules")) {
      rules.add(rule.getAsJsonObject());
    }
    return rules;
  }

  /** The ids of the rules of spec/{@code file}, in its order. */
  static List<String> ids(String file) throws IOException {
    List<String> ids = new ArrayList<>();
    for (JsonObject rule : rules(file)) {
      ids.add(rule.get("id").getAsString());
    }
    return ids;
  }

  /**
   * The values of the public static final String fields of {@code holder}, asserted to be named
   * after their value (upper case, '.' as '_') and to differ from each other.
   */
  static Set<String> constants(Class<?> holder) throws IllegalAccessException {
    Set<String> constants = new HashSet<>();
    for (Field field : holder.getDeclaredFields()) {
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
    return constants;
  }
}
