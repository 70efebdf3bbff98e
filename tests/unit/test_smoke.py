def test_home_renders_in_japanese_by_default(client, db):
    response = client.get("/")
    assert response.status_code == 200
    assert '<html lang="ja">' in response.content.decode()
