"""HomeMixer: the For You feed pipeline served as ScoredPostsService/GetScoredPosts."""
