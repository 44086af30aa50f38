package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.Progress;
import com.dsxir.optimizer_session.v1.Term;
import com.dsxir.optimizer_session.v1.TrialStatus;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The rule ids of {@link Rules} are exactly those of spec/checkpoint-rules-v1.json. */
class RulesTest {
  @Test
  void constantsAreTheIdsOfTheSpec() throws Exception {
    List<String> ids = SpecRules.ids("checkpoint-rules-v1.json");
    assertEquals(47, ids.size());
    assertEquals(new HashSet<>(ids), SpecRules.constants(Rules.class));
    assertEquals(ids, Rules.ALL);
  }

  @Test
  void refusalsEndWithTheirRule() {
    Checkpoint cp =
        Checkpoint.newBuilder()
            .setFormat("dsxir.optimizer_session.checkpoint/v2.0")
            .setProgress(Progress.getDefaultInstance())
            .build();
    ResumeMismatch e = assertThrows(ResumeMismatch.class, () -> Checkpoints.validate(cp));
    assertEquals(Rules.FORMAT_MAJOR, e.rule());
    assertEquals(
        "checkpoint_shape: format: unsupported major version 2 (this reader reads 1)"
            + " (rule format.major)",
        e.getMessage());

    e = assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(new byte[] {(byte) 0x80}));
    assertEquals(Rules.INPUT_TRAILER, e.rule());
    assertEquals("<input>", e.field());
    assertTrue(e.getMessage().endsWith(" (rule input.trailer)"), e.getMessage());
  }

  @Test
  void termRefusalsNameTheirRule() {
    Term noKind = Term.getDefaultInstance();
    InvalidCheckpoint e = assertThrows(InvalidCheckpoint.class, () -> Terms.canonicalTerm(noKind));
    assertEquals(Rules.TERM_KIND, e.rule());
    assertEquals("term: term has no kind (rule term.kind)", e.getMessage());

    e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(List.of(Double.NaN)));
    assertEquals(Rules.FLOAT_NAN, e.rule());

    Object deep = 1L;
    for (int i = 0; i < Terms.MAX_TERM_DEPTH; i++) {
      deep = List.of(deep);
    }
    Object tooDeep = deep;
    e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(tooDeep));
    assertEquals(Rules.TERM_DEPTH, e.rule());

    e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(Map.of(1L, "a", 1, "b")));
    assertEquals(Rules.TERM_MAP_ORDER, e.rule());
  }

  @Test
  void argumentsThatBreakNoRuleHaveNone() {
    InvalidCheckpoint e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(new Object()));
    assertNull(e.rule());
    assertEquals("value: Object has no Term form", e.getMessage());
    e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm("\ud800"));
    assertNull(e.rule());
    e =
        assertThrows(
            InvalidCheckpoint.class, () -> Trial.of(TrialStatus.TRIAL_STATUS_UNSPECIFIED));
    assertNull(e.rule());
  }
}
