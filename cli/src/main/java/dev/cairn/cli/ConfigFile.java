package dev.cairn.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * {@code --config FILE}: every long option of a command as a key ({@code world=3},
 * {@code storage=s3://…}, {@code save-every-seconds=600}), in a {@code .properties} file or a flat
 * {@code .json} object. Options given on the command line win over the file. An unknown key, a
 * missing file or a malformed one is bad input naming the file and the key.
 */
final class ConfigFile {
    static final String OPTION = "--config";

    private ConfigFile() {}

    /**
     * Returns {@code args} with the file's settings inserted right after the subcommand name for
     * every option the command line does not give; {@code args} unchanged without {@code --config}.
     */
    static String[] expand(String[] args, CommandSpec command) {
        int at = indexOfConfig(args);
        if (at < 0) {
            return args;
        }
        if (at + 1 >= args.length && !args[at].startsWith(OPTION + "=")) {
            return args; // picocli reports the missing value
        }
        Path file = Path.of(args[at].startsWith(OPTION + "=") ? args[at].substring(OPTION.length() + 1) : args[at + 1]);
        Map<String, String> settings = read(file);
        Set<String> given = new TreeSet<>();
        for (String a : args) {
            if (a.startsWith("--")) {
                given.add(a.contains("=") ? a.substring(2, a.indexOf('=')) : a.substring(2));
            }
        }
        List<String> inserted = new ArrayList<>();
        for (Map.Entry<String, String> e : settings.entrySet()) {
            String key = e.getKey();
            OptionSpec option = command.findOption("--" + key);
            if (option == null || key.equals("config") || option.usageHelp() || option.versionHelp()) {
                List<String> known = command.options().stream().filter(o -> !o.hidden() && !o.usageHelp() && !o.versionHelp())
                        .map(OptionSpec::longestName).filter(n -> n.startsWith("--") && !n.equals(OPTION)).map(n -> n.substring(2)).toList();
                List<String> close = Usage.closest(key, known);
                throw new UserError("config file " + file + ": unknown key '" + key + "'"
                        + (close.isEmpty() ? "" : "; did you mean '" + close.get(0) + "'?") + " (keys are the long options of 'cairn "
                        + command.name() + "' without the dashes)");
            }
            if (List.of(option.names()).stream().anyMatch(n -> given.contains(n.replaceFirst("^--?", "")))) {
                continue; // the command line wins
            }
            if (option.arity().max() == 0) {
                if (e.getValue().equalsIgnoreCase("true")) {
                    inserted.add("--" + key);
                } else if (!e.getValue().equalsIgnoreCase("false")) {
                    throw new UserError("config file " + file + ": key '" + key + "' is a flag and takes true or false, was '" + e.getValue() + "'");
                }
            } else {
                inserted.add("--" + key + "=" + e.getValue());
            }
        }
        int subcommand = List.of(args).indexOf(command.name());
        List<String> out = new ArrayList<>(List.of(args));
        out.addAll(subcommand + 1, inserted);
        return out.toArray(String[]::new);
    }

    private static int indexOfConfig(String[] args) {
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--")) {
                return -1;
            }
            if (args[i].equals(OPTION) || args[i].startsWith(OPTION + "=")) {
                return i;
            }
        }
        return -1;
    }

    private static Map<String, String> read(Path file) {
        Map<String, String> settings = new LinkedHashMap<>();
        String name = file.getFileName() == null ? "" : file.getFileName().toString();
        try {
            if (name.endsWith(".json")) {
                JsonNode root = new ObjectMapper().readTree(file.toFile());
                if (root == null || !root.isObject()) {
                    throw new UserError("config file " + file + " must hold one JSON object of option names and values");
                }
                for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> e = it.next();
                    if (e.getValue().isContainerNode() || e.getValue().isNull()) {
                        throw new UserError("config file " + file + ": key '" + e.getKey() + "' must have a string, number or boolean value");
                    }
                    settings.put(e.getKey(), e.getValue().asText());
                }
            } else {
                Properties p = new Properties();
                try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
                    p.load(r);
                }
                new TreeSet<>(p.stringPropertyNames()).forEach(k -> settings.put(k.strip(), p.getProperty(k).strip()));
            }
        } catch (NoSuchFileException e) {
            throw new UserError("config file " + file + " does not exist");
        } catch (IOException | IllegalArgumentException e) {
            throw new UserError("config file " + file + " cannot be read: " + e.getMessage());
        }
        return settings;
    }
}
