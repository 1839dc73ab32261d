package dev.cairn.cli;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/** One-line messages for misspelled subcommands and options, with the closest valid names suggested. */
final class Usage {
    private Usage() {}

    /** The first {@code --option} in {@code args} that {@code spec} does not know, as a message. */
    static Optional<String> unknownOption(CommandSpec spec, String[] args) {
        List<String> names = new ArrayList<>();
        for (OptionSpec o : spec.options()) {
            names.addAll(List.of(o.names()));
        }
        boolean inCommand = spec.parent() == null;
        for (String arg : args) {
            if (!inCommand) {
                inCommand = arg.equals(spec.name());
                continue;
            }
            // past "--" or a (possibly misspelled) subcommand name the options are not this command's
            if (arg.equals("--") || (!spec.subcommands().isEmpty() && !arg.startsWith("-"))) {
                break;
            }
            String name = arg.contains("=") ? arg.substring(0, arg.indexOf('=')) : arg;
            if (name.startsWith("--") && name.length() > 2 && !names.contains(name)) {
                return Optional.of(withSuggestion("unknown option '" + name + "'", name, names));
            }
        }
        return Optional.empty();
    }

    /** The message for arguments picocli could not match to a subcommand, option or parameter. */
    static String unmatched(CommandLine.UnmatchedArgumentException u) {
        List<String> unmatched = u.getUnmatched();
        String first = unmatched.isEmpty() ? "" : unmatched.get(0);
        CommandSpec spec = u.getCommandLine().getCommandSpec();
        if (first.startsWith("-")) {
            List<String> names = new ArrayList<>();
            spec.options().forEach(o -> names.addAll(List.of(o.names())));
            return withSuggestion("unknown option '" + first + "'", first, names);
        }
        if (!spec.subcommands().isEmpty()) {
            List<String> visible = spec.subcommands().entrySet().stream()
                    .filter(s -> !s.getValue().getCommandSpec().usageMessage().hidden()).map(s -> s.getKey()).toList();
            return withSuggestion("unknown command '" + first + "'", first, visible);
        }
        return "unexpected argument" + (unmatched.size() == 1 ? " '" + first + "'" : "s " + unmatched);
    }

    private static String withSuggestion(String message, String wrong, List<String> candidates) {
        List<String> close = closest(wrong, candidates);
        if (close.isEmpty()) {
            return message;
        }
        return message + "; did you mean " + String.join(" or ", close.stream().map(c -> "'" + c + "'").toList()) + "?";
    }

    /** Up to three candidates within a small edit distance (transpositions count once), closest first. */
    static List<String> closest(String wrong, List<String> candidates) {
        int limit = Math.max(1, Math.min(3, wrong.replaceFirst("^-+", "").length() / 3));
        return candidates.stream().distinct()
                .filter(c -> distance(wrong, c) <= limit || (wrong.length() >= 4 && c.startsWith(wrong)))
                .sorted(Comparator.comparingInt((String c) -> distance(wrong, c)).thenComparing(c -> c))
                .limit(3).toList();
    }

    /** Optimal string alignment distance: insertions, deletions, substitutions, adjacent transpositions. */
    static int distance(String a, String b) {
        int[][] d = new int[a.length() + 1][b.length() + 1];
        for (int i = 0; i <= a.length(); i++) {
            d[i][0] = i;
        }
        for (int j = 0; j <= b.length(); j++) {
            d[0][j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                d[i][j] = Math.min(Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
                if (i > 1 && j > 1 && a.charAt(i - 1) == b.charAt(j - 2) && a.charAt(i - 2) == b.charAt(j - 1)) {
                    d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
                }
            }
        }
        return d[a.length()][b.length()];
    }
}
