"""spart.pipelines."""
