package dev.cairn.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.UncheckedIOException;

/**
 * The {@code --json} output of the reporting commands: one JSON object on stdout (fields documented
 * in docs/operations.md); warnings, logs and progress stay on stderr.
 */
final class JsonOutput {
    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private JsonOutput() {}

    static ObjectNode object() {
        return JSON.createObjectNode();
    }

    /** Prints {@code node} as the command's one result on stdout. */
    static void print(Object node) {
        try {
            System.out.println(JSON.writeValueAsString(node));
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }
}
